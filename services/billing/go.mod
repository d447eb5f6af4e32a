module github.com/apitosms/apitosms/services/billing

go 1.26.0

require github.com/apitosms/apitosms/libs v0.0.0

replace github.com/apitosms/apitosms/libs => ../../libs
