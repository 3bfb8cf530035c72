package server

import (
	"context"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
)

// drainRecorder is a Supervisor that records when the drain began.
type drainRecorder struct {
	began   chan struct{} // closed by BeginDrain
	stopped atomic.Bool
}

func (d *drainRecorder) Reload()                  {}
func (d *drainRecorder) Stop(ctx context.Context) { d.stopped.Store(true) }
func (d *drainRecorder) BeginDrain()              { close(d.began) }

// The supervisor hears of the drain while requests are still in flight, not
// after they are done.
func TestBeginDrainComesBeforeTheInFlightRequestsEnd(t *testing.T) {
	lns, err := Listen([]string{"127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	sup := &drainRecorder{began: make(chan struct{})}
	inside, beganInside := make(chan struct{}), make(chan bool, 1)
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inside)
		<-release
		select {
		case <-sup.began:
			beganInside <- true
		default:
			beganInside <- false
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- Serve(ctx, &Sockets{Listeners: lns, signals: make(chan os.Signal, 1)}, Options{Handler: h, Supervisor: sup})
	}()
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		if resp, err := http.Get(lns[0].URL + "/"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	<-inside
	cancel() // as SIGTERM does
	select { // the request is still held
	case <-sup.began:
	case err := <-served:
		t.Fatalf("Serve returned before BeginDrain: %v", err)
	}
	close(release)
	if !<-beganInside {
		t.Fatal("the in-flight request ended before BeginDrain")
	}
	<-answered
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if !sup.stopped.Load() {
		t.Fatal("the supervisor was not stopped")
	}
}
