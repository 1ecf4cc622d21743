//! The names of every family heartwire exposes about itself. The aggregator reserves them, so
//! that no StatsD metric can collide with them.

/// Lines read, by transport.
pub const LINES_RECEIVED: &str = "heartwire_lines_received_total";
/// Lines rejected by the parser, by reason.
pub const LINES_REJECTED: &str = "heartwire_lines_rejected_total";
/// Accepted lines that carried fields this version does not know.
pub const LINES_UNKNOWN_FIELDS: &str = "heartwire_lines_unknown_fields_total";
/// Metric lines whose sample rate was out of range and clamped.
pub const SAMPLE_RATES_CLAMPED: &str = "heartwire_sample_rates_clamped_total";
/// Samples ignored because applying them would leave a non-finite value.
pub const SAMPLES_NON_FINITE: &str = "heartwire_samples_non_finite_total";
/// Datagrams (or stream reads) received, by transport.
pub const DATAGRAMS_RECEIVED: &str = "heartwire_datagrams_received_total";
/// Bytes received, by transport.
pub const BYTES_RECEIVED: &str = "heartwire_bytes_received_total";
/// Datagrams dropped because the pipeline channel was full, by transport.
pub const DATAGRAMS_DROPPED: &str = "heartwire_datagrams_dropped_total";
/// Bytes dropped because the pipeline channel was full, by transport.
pub const BYTES_DROPPED: &str = "heartwire_bytes_dropped_total";
/// Datagrams the kernel dropped before heartwire could read them, by listener.
pub const KERNEL_DROPS: &str = "heartwire_kernel_drops_total";
/// Batches a receive thread left unparsed for the aggregator (`parse_on_receive`, budget spent).
pub const RECEIVE_PARSE_DEFERRED: &str = "heartwire_receive_parse_deferred_total";
/// The effective receive buffer of a listener's socket.
pub const RECEIVE_BUFFER: &str = "heartwire_receive_buffer_bytes";
/// Stream connections opened, by transport.
pub const CONNECTIONS_OPENED: &str = "heartwire_connections_opened_total";
/// Stream connections closed, by transport and reason.
pub const CONNECTIONS_CLOSED: &str = "heartwire_connections_closed_total";
/// Stream connections open now, by transport.
pub const CONNECTIONS_OPEN: &str = "heartwire_connections";
/// Open job starts evicted at their bound before a matching end arrived.
pub const OPEN_STARTS_EVICTED: &str = "heartwire_open_starts_evicted_total";
/// Set members not tracked because their series held the most members allowed.
pub const SET_MEMBERS_DROPPED: &str = "heartwire_set_members_dropped_total";
/// Series held, by family (rendered from the snapshot).
pub const SERIES: &str = "heartwire_series";
/// New series dropped at a series cap, by family (rendered from the snapshot).
pub const SERIES_DROPPED: &str = "heartwire_series_dropped_total";
/// Samples rejected because their series conflicts with an existing family (rendered from
/// the snapshot).
pub const SERIES_CONFLICTS: &str = "heartwire_series_conflicts_total";
/// Series removed after their ttl without samples (rendered from the snapshot).
pub const SERIES_EXPIRED: &str = "heartwire_series_expired_total";
/// StatsD lines a mapping rule with `action: drop` discarded.
pub const LINES_DROPPED_BY_MAPPING: &str = "heartwire_lines_dropped_by_mapping_total";
/// The build, as a constant 1 with a `version` label.
pub const BUILD_INFO: &str = "heartwire_build_info";
/// Config reloads, by result (`success`, `failure`).
pub const CONFIG_RELOADS: &str = "heartwire_config_reloads_total";
/// Unix time of the last successful config load.
pub const CONFIG_LAST_SUCCESS: &str = "heartwire_config_last_reload_success_timestamp_seconds";
/// 1 when the last reload attempt succeeded.
pub const CONFIG_LAST_SUCCESSFUL: &str = "heartwire_config_last_reload_successful";
/// The active config, as a constant 1 labelled with a hash of its text.
pub const CONFIG_INFO: &str = "heartwire_config_info";
/// 1 when the file on disk changes a part that only a restart applies.
pub const CONFIG_RESTART_REQUIRED: &str = "heartwire_config_restart_required";
/// OTLP exports, by result (registered by `export` when OTLP is on).
pub const OTLP_EXPORTS: &str = "heartwire_otlp_exports_total";
/// OTLP requests repeated after a transient failure.
pub const OTLP_RETRIES: &str = "heartwire_otlp_export_retries_total";
/// Unix time of the last OTLP export the collector accepted.
pub const OTLP_LAST_SUCCESS: &str = "heartwire_otlp_last_success_timestamp_seconds";
/// How long OTLP requests took, whatever their result.
pub const OTLP_DURATION: &str = "heartwire_otlp_request_duration_seconds";
/// Textfile writes, by result (registered by `export` when the textfile is on).
pub const TEXTFILE_WRITES: &str = "heartwire_textfile_writes_total";
/// Unix time of the last complete textfile write.
pub const TEXTFILE_LAST_SUCCESS: &str = "heartwire_textfile_last_success_timestamp_seconds";
/// State file writes, by result (registered when `state.path` is set).
pub const STATE_WRITES: &str = "heartwire_state_writes_total";
/// Unix time of the last complete state file write.
pub const STATE_LAST_WRITE: &str = "heartwire_state_last_write_timestamp_seconds";
/// State files set aside at start, by reason.
pub const STATE_LOAD_FAILURES: &str = "heartwire_state_load_failures_total";

/// Every self-metric family, and the process collector's families.
pub const ALL: &[&str] = &[
    LINES_RECEIVED,
    LINES_REJECTED,
    LINES_UNKNOWN_FIELDS,
    SAMPLE_RATES_CLAMPED,
    SAMPLES_NON_FINITE,
    DATAGRAMS_RECEIVED,
    BYTES_RECEIVED,
    DATAGRAMS_DROPPED,
    BYTES_DROPPED,
    KERNEL_DROPS,
    RECEIVE_BUFFER,
    CONNECTIONS_OPENED,
    CONNECTIONS_CLOSED,
    CONNECTIONS_OPEN,
    OPEN_STARTS_EVICTED,
    SET_MEMBERS_DROPPED,
    SERIES,
    SERIES_DROPPED,
    SERIES_CONFLICTS,
    SERIES_EXPIRED,
    LINES_DROPPED_BY_MAPPING,
    BUILD_INFO,
    OTLP_EXPORTS,
    OTLP_RETRIES,
    OTLP_LAST_SUCCESS,
    OTLP_DURATION,
    TEXTFILE_WRITES,
    TEXTFILE_LAST_SUCCESS,
    STATE_WRITES,
    STATE_LAST_WRITE,
    STATE_LOAD_FAILURES,
    CONFIG_RELOADS,
    CONFIG_LAST_SUCCESS,
    CONFIG_LAST_SUCCESSFUL,
    CONFIG_INFO,
    CONFIG_RESTART_REQUIRED,
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_virtual_memory_bytes",
    "process_virtual_memory_max_bytes",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_threads",
];
