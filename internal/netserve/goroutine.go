package netserve

import (
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// readChunk is how much the goroutine driver reads at a time.
const readChunk = 16 * 1024

// pushTimeout bounds writing one pushed message to a client that runs on
// the goroutine driver; one that does not read is disconnected.
const pushTimeout = time.Second

// netLink drives a session from a goroutine of its own, over any net.Conn:
// read, Run, write; while the session waits for a completion it waits for
// Wake instead of reading.
type netLink struct {
	nc    net.Conn
	wake  chan struct{} // one pending wake-up
	wmu   sync.Mutex    // orders replies and pushed messages
	last  atomic.Int64  // unix ns of the last input
	ended atomic.Bool   // interrupted for shutdown
}

func (l *netLink) RemoteAddr() net.Addr { return l.nc.RemoteAddr() }
func (l *netLink) LocalAddr() net.Addr  { return l.nc.LocalAddr() }

func (l *netLink) Wake() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *netLink) Push(b []byte) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	_ = l.nc.SetWriteDeadline(time.Now().Add(pushTimeout))
	_, err := l.nc.Write(b)
	_ = l.nc.SetWriteDeadline(time.Time{})
	if err != nil {
		l.nc.Close()
	}
}

func (l *netLink) Close() { l.nc.Close() }

func (l *netLink) interrupt() {
	l.ended.Store(true)
	_ = l.nc.SetReadDeadline(time.Now())
	l.Wake()
}

func (l *netLink) idleSince() time.Time { return time.Unix(0, l.last.Load()) }

func (l *netLink) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	_, err := l.nc.Write(b)
	return err
}

// runConn serves nc on a new goroutine.
func (s *Server[S]) runConn(nc net.Conn, newSession func(Link) S) {
	l := &netLink{nc: nc, wake: make(chan struct{}, 1)}
	l.last.Store(time.Now().UnixNano())
	sess := newSession(l)
	if !s.add(sess, l) {
		nc.Close()
		sess.Closed()
		return
	}
	go s.serveConn(sess, l)
}

func (s *Server[S]) serveConn(sess S, l *netLink) {
	defer func() {
		if v := recover(); v != nil {
			s.logPanic(v, debug.Stack())
		}
		l.nc.Close()
		sess.Closed()
		s.remove(sess)
	}()
	out, done := sess.Run(nil)
	buf := make([]byte, readChunk)
	for {
		if l.write(out) != nil || done {
			return
		}
		if sess.Busy() {
			<-l.wake
			out, done = sess.Run(nil)
			continue
		}
		select {
		case <-l.wake:
			// The session asked to run again before more input (it
			// stopped to have its replies written).
			out, done = sess.Run(nil)
			continue
		default:
		}
		n, err := l.nc.Read(buf)
		if n > 0 {
			l.last.Store(time.Now().UnixNano())
			out, done = sess.Run(buf[:n])
			continue
		}
		if err != nil && l.ended.Load() {
			// Shutdown interrupted the read: let the session end.
			_ = l.nc.SetReadDeadline(time.Time{})
			out, done = sess.Run(nil)
			done = true
			continue
		}
		if err != nil {
			return
		}
	}
}
