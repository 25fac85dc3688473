/**
 * Certificates for a wharfd on TCP with --tlsverify: in `dir`, a CA (ca.pem), the server's certificate for
 * 127.0.0.1 (cert.pem, key.pem), a client certificate the CA signed (client-cert.pem, client-key.pem) and a
 * self-signed one it did not (rogue-cert.pem, rogue-key.pem). Made with openssl; false when that fails.
 */
import { execFile } from 'node:child_process';

const SCRIPT = `
set -e
cd "$1"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=wharf-test-ca -keyout ca-key.pem -out ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout key.pem -out server.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile server.ext -out cert.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=client -keyout client-key.pem -out client.csr 2>/dev/null
printf 'extendedKeyUsage=clientAuth\\n' > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile client.ext -out client-cert.pem 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=rogue -keyout rogue-key.pem -out rogue-cert.pem 2>/dev/null
`;

export function makeCerts(dir: string): Promise<boolean> {
  return new Promise((res) => execFile('/bin/sh', ['-c', SCRIPT, 'sh', dir], (err) => res(!err)));
}
