module github.com/apitosms/apitosms

go 1.26.0

require (
	github.com/apitosms/apitosms/libs v0.0.0
	github.com/apitosms/apitosms/services/billing v0.0.0
	github.com/apitosms/apitosms/services/ingress v0.0.0
	github.com/apitosms/apitosms/services/queue v0.0.0
	github.com/apitosms/apitosms/services/releases v0.0.0
	github.com/apitosms/apitosms/services/status v0.0.0
	github.com/apitosms/apitosms/services/webhooks v0.0.0
	github.com/goccy/go-json v0.10.5
	github.com/standard-webhooks/standard-webhooks/libraries v0.0.1
)

replace (
	github.com/apitosms/apitosms/libs => ./libs
	github.com/apitosms/apitosms/services/billing => ./services/billing
	github.com/apitosms/apitosms/services/ingress => ./services/ingress
	github.com/apitosms/apitosms/services/queue => ./services/queue
	github.com/apitosms/apitosms/services/releases => ./services/releases
	github.com/apitosms/apitosms/services/status => ./services/status
	github.com/apitosms/apitosms/services/webhooks => ./services/webhooks
)
