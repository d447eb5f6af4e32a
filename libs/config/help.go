package config

// meanings says what each variable is for, as `apitosms -h` prints it. A
// test loads every service's configuration and fails when a variable read
// has no line here, or a line here names a variable nothing reads.
var meanings = map[string]string{
	"APITOSMS_TARGET":           "services in this process: all, or a comma list of billing, queue, status, releases, webhooks, stores, console, ingress (also -target)",
	"APITOSMS_HTTP_ADDR":        "public HTTP listen address (API, /healthz, /readyz, /metrics)",
	"APITOSMS_PUBLIC_URL":       "base of downloadUrl in app-version answers and of each store connection's webhookUrl",
	"APITOSMS_DATA_DIR":         "embedded NATS store and SQLite files; locked by one process at a time",
	"APITOSMS_ADMIN_TOKEN":      "bearer token of the operator API (/admin/v1); unset: it answers 401 (secret)",
	"APITOSMS_NATS_URL":         "external NATS servers, comma-separated; unset: embedded server in the data dir (secret)",
	"APITOSMS_DATABASE_URL":     "postgres:// URL; unset: SQLite in the data dir (secret)",
	"APITOSMS_NAMESPACE":        "prefix of every stream, subject and bucket (several deployments on one NATS)",
	"APITOSMS_STREAM_REPLICAS":  "replicas of streams and buckets in a NATS cluster (1-5)",
	"APITOSMS_LOG_LEVEL":        "debug, info, warn or error (JSON logs on stderr)",
	"APITOSMS_SHUTDOWN_TIMEOUT": "bound on the SIGTERM drain",
	"APITOSMS_DEBUG_ADDR":       "net/http/pprof listener (bind it to loopback); unset: off",

	"APITOSMS_INGRESS_MAX_BATCH":         "items per queue request and entries per status request",
	"APITOSMS_INGRESS_MAX_BODY_BYTES":    "largest request body",
	"APITOSMS_INGRESS_REQUEST_TIMEOUT":   "bound on one request's work",
	"APITOSMS_INGRESS_IDEMPOTENCY_LEASE": "how long a crashed request blocks its Idempotency-Key",

	"APITOSMS_BILLING_RPC_CONCURRENCY":  "billing requests handled at once",
	"APITOSMS_BILLING_GROUP_COMMIT_MAX": "quota reservations per transaction",
	"APITOSMS_BILLING_COMMIT_TIMEOUT":   "bound on one group commit of reservations",

	"APITOSMS_BROKER_TIMEOUT": "bound on one attempt of a broker call (KV operation, publish ack, request/reply)",

	"APITOSMS_QUEUE_CLAIM_WAIT_TIMEOUT":     "read-your-writes wait of get_messages before 503",
	"APITOSMS_QUEUE_RPC_CONCURRENCY":        "claims answered at once",
	"APITOSMS_QUEUE_INGEST_BATCH":           "accepted stream messages per insert transaction",
	"APITOSMS_QUEUE_INGEST_LINGER":          "how long an ingest batch fills after its first message",
	"APITOSMS_QUEUE_REPORTED_BATCH":         "status reports applied per transaction",
	"APITOSMS_QUEUE_MAX_DELIVER":            "attempts before a stream message is dead-lettered",
	"APITOSMS_QUEUE_SWEEP_INTERVAL":         "how often retention and quota refunds of cancelled and expired messages run",
	"APITOSMS_CLAIM_CONFIRM_TIMEOUT":        "a get_messages claim the ingress never confirmed goes back to new after this",
	"APITOSMS_CLAIM_SWEEP_INTERVAL":         "how often unconfirmed claims and ended leases are settled, due sendAt messages released and ended lifetimes expired",
	"APITOSMS_RETENTION":                    "how long final messages are kept (30d, 720h)",
	"APITOSMS_KEEP_TEXT":                    "false blanks a message's text once it is final",
	"APITOSMS_QUEUE_BACKLOG_INTERVAL":       "how often the queue refreshes its backlog gauges (kept counts and the oldest waiting message; less often when a refresh takes over 2% of the time)",
	"APITOSMS_PHONE_OFFLINE_AFTER":          "a phone not seen (pull or report with a device) for this long is offline; phone.offline fires while messages wait",
	"APITOSMS_WEBHOOK_ALLOW_PRIVATE":        "true allows plain http and private, loopback and link-local webhook destinations (on-premises receivers, tests)",
	"APITOSMS_WEBHOOK_ENDPOINT_CONCURRENCY": "webhook POSTs in flight per endpoint and process",
	"APITOSMS_WEBHOOK_WORKERS":              "webhook POSTs in flight per process",
	"APITOSMS_WEBHOOK_TIMEOUT":              "bound on one webhook POST (a 2xx within it is delivered)",
	"APITOSMS_WEBHOOK_RETRY_SCHEDULE":       "comma list of waits between webhook attempts; the last repeats",
	"APITOSMS_WEBHOOK_DISABLE_AFTER":        "an endpoint failing this long is disabled",
	"APITOSMS_WEBHOOK_ROTATION_OVERLAP":     "how long a rotated webhook secret keeps signing beside the new one",
	"APITOSMS_WEBHOOK_MAX_ENDPOINTS":        "webhook endpoints per token",
	"APITOSMS_WEBHOOK_BATCH_SIZE":           "events per POST to a batch endpoint",
	"APITOSMS_WEBHOOK_POLL":                 "how often due webhook retries are looked for",
	"APITOSMS_WEBHOOK_LOG_RETENTION":        "how long the webhook deliveries log is kept",
	"APITOSMS_WEBHOOK_INGEST_BATCH":         "events per webhook fan-out transaction",
	"APITOSMS_WEBHOOK_INGEST_LINGER":        "how long a webhook fan-out batch fills after its first message",
	"APITOSMS_WEBHOOK_RPC_CONCURRENCY":      "webhook API requests answered at once",
	"APITOSMS_STORES_MAX":                   "store connections per token",
	"APITOSMS_STORES_LOG_RETENTION":         "how long the store decisions log is kept",
	"APITOSMS_STORES_DEDUPE":                "how long a shop's delivery id is remembered (platform retries send nothing)",
	"APITOSMS_STORES_KEEP_ORDERS":           "how long per-order send records and order details are kept (one SMS per order and event within it)",
	"APITOSMS_STORES_INGEST_BATCH":          "shop deliveries per consumer batch",
	"APITOSMS_STORES_RPC_CONCURRENCY":       "store API requests answered at once",
	"APITOSMS_READ_RATE_LIMIT":              "tracking and webhook requests per token per rolling minute (the read window)",
	"APITOSMS_INGRESS_AUTH_CACHE_TTL":       "how long ingress reuses a token lookup (billing broadcasts changes; 0 turns the cache off)",

	"APITOSMS_CONSOLE_SESSION_TTL":     "web console session lifetime from sign-in",
	"APITOSMS_CONSOLE_SIGNIN_ATTEMPTS": "failed console sign-ins per account per throttle window (four times as many per client address)",
	"APITOSMS_CONSOLE_THROTTLE_WINDOW": "how long failed console sign-ins are counted",
	"APITOSMS_CONSOLE_API_URL":         "this server's public API as the console reaches it (test SMS, releases); unset: APITOSMS_PUBLIC_URL",

	"APITOSMS_STATUS_INGEST_BATCH":       "accepted stream messages per insert transaction",
	"APITOSMS_STATUS_INGEST_LINGER":      "how long an ingest batch fills after its first message",
	"APITOSMS_STATUS_INGEST_MAX_DELIVER": "attempts before a stream message is dead-lettered",
	"APITOSMS_STATUS_RPC_CONCURRENCY":    "status reports handled at once",
	"APITOSMS_STATUS_CATCHUP_TIMEOUT":    "read-your-writes wait of status reports before 503",
	"APITOSMS_STATUS_OUTBOX_INTERVAL":    "how often the reported-outbox relay looks for unpublished events",
	"APITOSMS_STATUS_OUTBOX_AGE":         "age from which the relay republishes an unpublished reported event",

	"APITOSMS_RELEASES_MAX_APK_BYTES":    "largest APK upload",
	"APITOSMS_RELEASES_DOWNLOAD_TIMEOUT": "bound on one APK download (slower clients resume with Range)",
}

// Meaning is the help line of variable key, or "" if it has none.
func Meaning(key string) string { return meanings[key] }

// Described lists the variables that have a help line.
func Described() []string {
	out := make([]string, 0, len(meanings))
	for k := range meanings {
		out = append(out, k)
	}
	return out
}
