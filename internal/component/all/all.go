// Package all links every Go-native component into the binary: importing it
// runs each component package's init, which registers the component.
// Adding a component is one new folder under internal/component/ and one
// line here.
package all

import (
	// one blank import per component package, sorted:
	_ "github.com/wsgate/wsgate/internal/component/accesslog"
	_ "github.com/wsgate/wsgate/internal/component/auth"
	_ "github.com/wsgate/wsgate/internal/component/bodylimit"
	_ "github.com/wsgate/wsgate/internal/component/cgi"
	_ "github.com/wsgate/wsgate/internal/component/compress"
	_ "github.com/wsgate/wsgate/internal/component/cors"
	_ "github.com/wsgate/wsgate/internal/component/delegate"
	_ "github.com/wsgate/wsgate/internal/component/django_full"
	_ "github.com/wsgate/wsgate/internal/component/health"
	_ "github.com/wsgate/wsgate/internal/component/metrics"
	_ "github.com/wsgate/wsgate/internal/component/proxy"
	_ "github.com/wsgate/wsgate/internal/component/proxyfix"
	_ "github.com/wsgate/wsgate/internal/component/ratelimit"
	_ "github.com/wsgate/wsgate/internal/component/requestid"
	_ "github.com/wsgate/wsgate/internal/component/sendfile"
	_ "github.com/wsgate/wsgate/internal/component/static"
	_ "github.com/wsgate/wsgate/internal/component/urlmap"
)
