package fakeprovider

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
)

// memListener is a net.Listener whose connections are net.Pipes dialed by
// the in-memory transport. Everything blocks on channels, so a fake created
// inside a testing/synctest bubble is durably blocked while it waits, and
// virtual time advances.
type memListener struct {
	srv    *Server
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newMemListener(s *Server) *memListener {
	return &memListener{srv: s, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *memListener) Addr() net.Addr { return memAddr{} }

// dial connects to the fake. During an outage it fails as a refused TCP
// connection does.
func (l *memListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	if l.srv.outageNow() {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		client.Close()
		server.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.Join(net.ErrClosed, syscall.ECONNREFUSED)}
	case <-ctx.Done():
		client.Close()
		server.Close()
		return nil, ctx.Err()
	}
}

type memAddr struct{}

func (memAddr) Network() string { return "memory" }
func (memAddr) String() string  { return "fakeprovider" }

// outageListener closes connections as it accepts them while an outage
// fault is active, with SO_LINGER 0 so the client sees a reset.
type outageListener struct {
	net.Listener
	srv *Server
}

func (l *outageListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.srv.outageNow() {
			return c, nil
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.Close()
	}
}
