package ctradersim

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/opencashier/cashier/internal/errs"
)

// Server is a simulator listening on a TCP address.
type Server struct {
	sim  *Sim
	srv  *http.Server
	url  string
	done chan struct{}
	err  error
}

// Start builds a simulator from cfg and serves it on cfg.Addr (default
// 127.0.0.1 on a free port). The server stops when ctx is cancelled or Close
// is called. It returns the errors of New and an errs.Unavailable error when
// the address cannot be listened on.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	sim, err := New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", sim.cfg.Addr)
	if err != nil {
		return nil, &errs.Error{Code: errs.Unavailable, Op: "ctradersim.Start", Message: "cannot listen on " + sim.cfg.Addr, Err: err}
	}
	s := &Server{
		sim:  sim,
		srv:  &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second},
		url:  "http://" + ln.Addr().String(),
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	context.AfterFunc(ctx, func() { _ = s.Close() })
	return s, nil
}

// URL is the server's base URL, e.g. http://127.0.0.1:8081.
func (s *Server) URL() string { return s.url }

// Sim is the simulator the server serves, for tests and the demo to steer.
func (s *Server) Sim() *Sim { return s.sim }

// Close stops the server: held requests are released, open connections
// get up to five seconds to finish, then are closed. It returns the error
// that ended serving, if any other than the close itself.
func (s *Server) Close() error {
	s.sim.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	<-s.done
	return s.err
}
