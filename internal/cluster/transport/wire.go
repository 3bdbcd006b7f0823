package transport

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// Stream kinds: the first byte of every connection the transport opens,
// after the peer port's hello. Append new kinds; never reuse one.
const (
	kindMessages byte = 'm'
	kindSnapshot byte = 's'
)

// headerLen is the length of a stream header: kind | from | to.
const headerLen = 1 + 8 + 8

// Snapshot status bytes, the receiver's one-byte answer.
const (
	snapStored byte = 0
	snapFailed byte = 1
)

// chunkSize is the most data one snapshot chunk carries. It bounds the
// memory a snapshot in flight uses on the sender, and is the largest chunk
// a receiver accepts.
const chunkSize = 256 << 10

const (
	// readBufSize is the receiver's bufio size: frames that are already
	// in it when one is read are delivered in the same Receive call.
	readBufSize = 64 << 10
	// keepBuf is the largest frame or batch buffer kept for reuse; a larger
	// one (a rare huge entry) is dropped so an idle stream does not hold it.
	keepBuf = 4 << 20
	// headerTimeout bounds how long a new connection may take to send its
	// stream header.
	headerTimeout = 5 * time.Second
)

func appendHeader(b []byte, kind byte, from, to uint64) []byte {
	b = append(b, kind)
	b = binary.BigEndian.AppendUint64(b, from)
	return binary.BigEndian.AppendUint64(b, to)
}

func parseHeader(h *[headerLen]byte) (kind byte, from, to uint64) {
	return h[0], binary.BigEndian.Uint64(h[1:9]), binary.BigEndian.Uint64(h[9:])
}

// appendFrame appends length | m to b, marshaling m in place: the only
// allocation is b's growth, which a reused b makes rare. A message longer
// than limit is refused with ErrFrameTooLarge.
func appendFrame(b []byte, m *raftpb.Message, limit int) ([]byte, error) {
	n := m.Size()
	if n > limit {
		return b, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, limit)
	}
	off := len(b)
	b = slices.Grow(b, 4+n)[:off+4+n]
	binary.BigEndian.PutUint32(b[off:], uint32(n))
	if _, err := m.MarshalToSizedBuffer(b[off+4:]); err != nil {
		return b[:off], err
	}
	return b, nil
}

// readFrame reads one frame's body into buf, reusing its memory, and
// returns it. A clean end of stream before a frame is io.EOF.
func readFrame(r io.Reader, buf []byte, limit int) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return buf, err
	}
	n := int(binary.BigEndian.Uint32(h[:]))
	if n > limit {
		return buf, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, limit)
	}
	return readN(r, buf[:0], n)
}

// readN reads n bytes into buf. Beyond buf's capacity it grows buf by
// doubling only as data arrives, so a bogus length from a broken peer costs
// at most twice what was actually received, not what was announced.
func readN(r io.Reader, buf []byte, n int) ([]byte, error) {
	if n <= cap(buf) {
		buf = buf[:n]
		_, err := io.ReadFull(r, buf)
		return buf, unexpected(err)
	}
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(n, max(2*cap(buf), readBufSize))-len(buf))
		}
		k, err := io.ReadFull(r, buf[len(buf):min(n, cap(buf))])
		buf = buf[:len(buf)+k]
		if err != nil {
			return buf, unexpected(err)
		}
	}
	return buf, nil
}

// unexpected turns io.EOF inside a frame into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// frameBuffered reports whether r already holds the whole next frame.
func frameBuffered(r *bufio.Reader) bool {
	if r.Buffered() < 4 {
		return false
	}
	h, _ := r.Peek(4)
	return r.Buffered()-4 >= int(binary.BigEndian.Uint32(h))
}

// writeTimeout writes b to c within d.
func writeTimeout(c net.Conn, b []byte, d time.Duration) error {
	_ = c.SetWriteDeadline(time.Now().Add(d))
	_, err := c.Write(b)
	return err
}
