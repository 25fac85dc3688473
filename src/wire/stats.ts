/** GET /containers/{id}/stats (types.StatsJSON of API 1.41) and POST /containers/{id}/update. */
export interface CpuStats {
  cpu_usage: { total_usage: number; percpu_usage?: number[]; usage_in_kernelmode: number; usage_in_usermode: number };
  system_cpu_usage?: number;
  online_cpus?: number;
  throttling_data: { periods: number; throttled_periods: number; throttled_time: number };
}

export interface BlkioEntry { major: number; minor: number; op: string; value: number }

export interface StatsJson {
  read: string;
  preread: string;
  pids_stats: { current?: number; limit?: number };
  blkio_stats: Record<'io_service_bytes_recursive' | 'io_serviced_recursive' | 'io_queue_recursive' | 'io_service_time_recursive' | 'io_wait_time_recursive' | 'io_merged_recursive' | 'io_time_recursive' | 'sectors_recursive', BlkioEntry[] | null>;
  num_procs: number;
  storage_stats: Record<string, never>;
  cpu_stats: CpuStats;
  precpu_stats: CpuStats;
  memory_stats: { usage?: number; max_usage?: number; stats?: Record<string, number>; failcnt?: number; limit?: number };
  name: string;
  id: string;
  networks?: Record<string, { rx_bytes: number; rx_packets: number; rx_errors: number; rx_dropped: number; tx_bytes: number; tx_packets: number; tx_errors: number; tx_dropped: number }>;
}

/** POST /containers/{id}/update's body: the resources (and restart policy) that can change on a live container. */
export interface ContainerUpdate {
  Memory?: number;
  MemorySwap?: number;
  MemoryReservation?: number;
  KernelMemory?: number;
  NanoCpus?: number;
  CpuShares?: number;
  CpuPeriod?: number;
  CpuQuota?: number;
  CpusetCpus?: string;
  CpusetMems?: string;
  PidsLimit?: number | null;
  BlkioWeight?: number;
  RestartPolicy?: { Name?: string; MaximumRetryCount?: number };
}
