package accesslog

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// watchHangup reopens the file on every SIGHUP until the filter is closed.
// signal.Notify delivers the signal to every channel registered for it: the
// server's own SIGHUP handling (reload) is unaffected. The registration is
// done before it returns, so no SIGHUP after the build is missed.
func (o *output) watchHangup(log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-hup:
				if err := o.reopen(); err != nil {
					log.Error("access log not reopened; lines still go to the file open before", "error", err.Error())
				} else {
					log.Info("access log reopened", "file", o.path)
				}
				select {
				case o.reopened <- struct{}{}:
				default:
				}
			case <-o.stop:
				return
			}
		}
	}()
}
