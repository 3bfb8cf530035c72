module github.com/wsgate/wsgate

go 1.26.0

require (
	github.com/coder/websocket v1.8.15
	github.com/GehirnInc/crypt v0.0.0-20230320061759-8cc1b52080c5
	golang.org/x/crypto v0.59.0
	golang.org/x/time v0.16.0
)
