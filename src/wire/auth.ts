/** Registry credentials as the Engine API carries them (X-Registry-Auth, base64url JSON; POST /auth's body). */
export interface AuthConfig {
  username?: string;
  password?: string;
  auth?: string;
  serveraddress?: string;
  identitytoken?: string;
  registrytoken?: string;
}
