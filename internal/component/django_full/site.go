package django_full

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/component/static"
)

// site routes one request: a file under a mount, else Django.
type site struct {
	django http.Handler
	mounts []mount // longest prefix first
}

// mount is STATIC_URL or MEDIA_URL: prefix ends in "/"; each directory of
// chain hands a name it does not have to the next.
type mount struct {
	prefix string
	chain  []*static.Files
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r, f := component.Attach(r)
	_, p, err := component.RequestPath(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, m := range s.mounts {
		if !strings.HasPrefix(p, m.prefix) {
			continue
		}
		// As a urlmap would mount it: the prefix joins SCRIPT_NAME, the
		// rest is PATH_INFO. A miss handed on to Django gets the request
		// as it came (toDjango puts the Facts back).
		r = r.WithContext(context.WithValue(r.Context(), savedKey{}, *f))
		mounted := strings.TrimSuffix(m.prefix, "/")
		f.ScriptName += mounted
		f.PathInfo, f.PathSet = p[len(mounted):], true
		f.Route = mounted
		m.chain[0].ServeHTTP(w, r)
		return
	}
	s.django.ServeHTTP(w, r)
}

type savedKey struct{}

// toDjango is the last NotFound of a finder chain: Django gets the path as
// the client sent it, not the one below STATIC_URL.
func toDjango(django http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if saved, ok := r.Context().Value(savedKey{}).(component.Facts); ok {
			*component.FactsOf(r) = saved
		}
		django.ServeHTTP(w, r)
	})
}

// Close releases every directory held open.
func (s *site) Close() error {
	var errs []error
	for _, m := range s.mounts {
		for _, f := range m.chain {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}
