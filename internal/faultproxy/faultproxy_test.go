package faultproxy

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// echo serves a line echo on loopback.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// dialAs connects to addr saying hello as node id.
func dialAs(t *testing.T, addr, id string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	hello := append([]byte{'R', byte(len(id))}, id...)
	hello = append(hello, 0)
	if _, err := c.Write(hello); err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return c, bufio.NewReader(c)
}

// roundTrip reports whether a line sent on c comes back (after the echoed
// hello, which the caller has consumed).
func roundTrip(c net.Conn, r *bufio.Reader) bool {
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return false
	}
	line, err := r.ReadString('\n')
	return err == nil && line == "ping\n"
}

func TestCutAndHeal(t *testing.T) {
	nw := New()
	defer nw.Close()
	pb, err := nw.Listen("b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nw.Listen("c"); err != nil {
		t.Fatal(err)
	}
	pb.SetTarget(echo(t))

	open := func(from string) (net.Conn, *bufio.Reader) {
		c, r := dialAs(t, pb.Addr(), from)
		// The proxy forwards the hello itself: the echo sends it back.
		hello := make([]byte, 2+len(from)+1)
		if _, err := io.ReadFull(r, hello); err != nil {
			return c, nil
		}
		return c, r
	}
	ca, ra := open("a")
	if ra == nil || !roundTrip(ca, ra) {
		t.Fatal("link a→b does not work before the cut")
	}
	cc, rc := open("c")
	if rc == nil || !roundTrip(cc, rc) {
		t.Fatal("link c→b does not work")
	}

	nw.Cut("a", "b")
	if roundTrip(ca, ra) {
		t.Fatal("an open a→b connection survived the cut")
	}
	if c, r := open("a"); r != nil && roundTrip(c, r) {
		t.Fatal("a new a→b connection was let through during the cut")
	}
	if !roundTrip(cc, rc) {
		t.Fatal("the cut of a–b broke c→b")
	}

	nw.Heal()
	if c, r := open("a"); r == nil || !roundTrip(c, r) {
		t.Fatal("a→b does not work after healing")
	}

	nw.Isolate("b")
	if roundTrip(cc, rc) {
		t.Fatal("c→b survived isolating b")
	}
}

func TestCutOneWay(t *testing.T) {
	nw := New()
	defer nw.Close()
	pa, err := nw.Listen("a")
	if err != nil {
		t.Fatal(err)
	}
	pb, err := nw.Listen("b")
	if err != nil {
		t.Fatal(err)
	}
	pa.SetTarget(echo(t))
	pb.SetTarget(echo(t))
	open := func(p *Proxy, from string) (net.Conn, *bufio.Reader) {
		c, r := dialAs(t, p.Addr(), from)
		hello := make([]byte, 2+len(from)+1)
		if _, err := io.ReadFull(r, hello); err != nil {
			return c, nil
		}
		return c, r
	}
	ab, rab := open(pb, "a")
	if rab == nil || !roundTrip(ab, rab) {
		t.Fatal("a→b does not work before the cut")
	}
	nw.CutOneWay("a", "b")
	if roundTrip(ab, rab) {
		t.Fatal("an open a→b connection survived the one-way cut")
	}
	if c, r := open(pb, "a"); r != nil && roundTrip(c, r) {
		t.Fatal("a new a→b connection was let through")
	}
	if c, r := open(pa, "b"); r == nil || !roundTrip(c, r) {
		t.Fatal("the one-way cut a→b also broke b→a")
	}
	nw.Heal()
	if c, r := open(pb, "a"); r == nil || !roundTrip(c, r) {
		t.Fatal("a→b does not work after healing")
	}
}

func TestStallHoldsTrafficUntilResume(t *testing.T) {
	nw := New()
	defer nw.Close()
	pb, err := nw.Listen("b")
	if err != nil {
		t.Fatal(err)
	}
	pb.SetTarget(echo(t))
	c, r := dialAs(t, pb.Addr(), "a")
	if _, err := io.ReadFull(r, make([]byte, 2+1+1)); err != nil {
		t.Fatal(err)
	}
	if !roundTrip(c, r) {
		t.Fatal("link a→b does not work before the stall")
	}
	nw.Stall("b")
	if _, err := c.Write([]byte("held\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if line, err := r.ReadString('\n'); err == nil {
		t.Fatalf("got %q through a stalled link", line)
	}
	nw.Resume()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || line != "held\n" {
		t.Fatalf("after Resume: %q, %v; want the held line", line, err)
	}
}
