module github.com/apitosms/apitosms

go 1.26.0

require (
	github.com/apitosms/apitosms/libs v0.0.0
	github.com/apitosms/apitosms/services/billing v0.0.0
	github.com/apitosms/apitosms/services/ingress v0.0.0
	github.com/apitosms/apitosms/services/queue v0.0.0
	github.com/apitosms/apitosms/services/releases v0.0.0
	github.com/apitosms/apitosms/services/status v0.0.0
	github.com/goccy/go-json v0.10.5
)

require (
	github.com/antithesishq/antithesis-sdk-go v0.8.0-default-no-op // indirect
	github.com/google/go-tpm v0.9.8 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/minio/highwayhash v1.0.4 // indirect
	github.com/nats-io/jwt/v2 v2.8.2 // indirect
	github.com/nats-io/nats-server/v2 v2.15.2 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)

replace (
	github.com/apitosms/apitosms/libs => ./libs
	github.com/apitosms/apitosms/services/billing => ./services/billing
	github.com/apitosms/apitosms/services/ingress => ./services/ingress
	github.com/apitosms/apitosms/services/queue => ./services/queue
	github.com/apitosms/apitosms/services/releases => ./services/releases
	github.com/apitosms/apitosms/services/status => ./services/status
)

tool github.com/nats-io/nats-server/v2
