package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const (
	// snapshotReadTimeout bounds each read of a snapshot stream on the
	// receiver, so a sender that vanished without a reset does not hold the
	// Handler forever. The sender writes each chunk within its WriteTimeout.
	snapshotReadTimeout = 30 * time.Second
	// snapshotAckTimeout bounds the sender's wait for the status byte, which
	// comes after the receiver has stored the snapshot (an fsync or two).
	snapshotAckTimeout = time.Minute
)

// sendSnapshot streams m's snapshot to the peer and reports the outcome.
// It runs on its own goroutine, one per peer at a time.
func (p *peer) sendSnapshot(m raftpb.Message) {
	err := p.streamSnapshot(m)
	var index uint64
	if m.Snapshot != nil {
		index = m.Snapshot.Metadata.Index
	}
	if err != nil {
		p.t.log.Warn("raft snapshot not sent", "peer", p.id, "index", index, "err", err)
	} else {
		p.t.log.Info("raft snapshot sent", "peer", p.id, "index", index)
	}
	// Free the slot first: raft may send the next snapshot as soon as it
	// hears about this one.
	p.snapping.Store(false)
	p.t.cfg.Handler.ReportSnapshot(p.id, err == nil)
}

func (p *peer) streamSnapshot(m raftpb.Message) error {
	if m.Snapshot == nil {
		return fmt.Errorf("%w: MsgSnap without a snapshot", ErrBadFrame)
	}
	data, size, err := p.openSnapshot(m.Snapshot)
	if err != nil {
		return fmt.Errorf("open snapshot: %w", err)
	}
	defer data.Close()
	// The header carries the metadata only; the data follows in chunks.
	m.Snapshot = &raftpb.Snapshot{Metadata: m.Snapshot.Metadata}

	c, err := p.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(p.ctx, func() { c.Close() })
	defer stop()

	wt := p.t.cfg.WriteTimeout
	b := appendHeader(make([]byte, 0, 4+chunkSize), kindSnapshot, p.t.cfg.ID, p.id)
	if b, err = appendFrame(b, &m, p.t.cfg.MaxFrameBytes); err != nil {
		return err
	}
	b = binary.BigEndian.AppendUint64(b, uint64(size))
	if err := writeTimeout(c, b, wt); err != nil {
		return err
	}
	// One buffer, one chunk at a time: the memory a snapshot uses does not
	// depend on its size.
	chunk := b[:4+chunkSize]
	var sum uint32
	var sent int64
	for {
		n, rerr := io.ReadFull(data, chunk[4:])
		if n > 0 {
			binary.BigEndian.PutUint32(chunk, uint32(n))
			sum = crc32.Update(sum, castagnoli, chunk[4:4+n])
			sent += int64(n)
			if err := writeTimeout(c, chunk[:4+n], wt); err != nil {
				return err
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("read snapshot: %w", rerr)
		}
	}
	if sent != size {
		// Leaving without the end marker makes the receiver fail too.
		return fmt.Errorf("%w: source gave %d bytes, announced %d", ErrTruncated, sent, size)
	}
	var end [8]byte
	binary.BigEndian.PutUint32(end[4:], sum)
	if err := writeTimeout(c, end[:], wt); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(snapshotAckTimeout))
	var st [1]byte
	if _, err := io.ReadFull(c, st[:]); err != nil {
		return fmt.Errorf("waiting for the snapshot status: %w", err)
	}
	if st[0] != snapStored {
		return ErrSnapshotRejected
	}
	return nil
}

func (p *peer) openSnapshot(s *raftpb.Snapshot) (io.ReadCloser, int64, error) {
	if p.t.cfg.Snapshots == nil {
		return io.NopCloser(bytes.NewReader(s.Data)), int64(len(s.Data)), nil
	}
	return p.t.cfg.Snapshots.OpenSnapshot(s.Metadata)
}

// serveSnapshot receives one snapshot stream, hands it to the Handler and
// answers with its status.
func (t *Transport) serveSnapshot(c net.Conn, from uint64) {
	r := bufio.NewReaderSize(c, readBufSize)
	_ = c.SetReadDeadline(time.Now().Add(snapshotReadTimeout))
	m, size, err := readSnapshotHeader(r, t.cfg.MaxFrameBytes)
	if err != nil {
		t.log.Warn("raft snapshot stream closed: bad header", "peer", from, "err", err)
		return
	}
	sr := &snapshotReader{c: c, r: r, size: size}
	err = t.cfg.Handler.ReceiveSnapshot(m, sr)
	if err == nil && sr.err != io.EOF {
		err = ErrNotDrained
	}
	st := snapStored
	if err != nil {
		st = snapFailed
		t.log.Warn("raft snapshot not stored", "peer", from, "index", m.Snapshot.Metadata.Index, "err", err)
	} else {
		t.log.Info("raft snapshot received", "peer", from, "index", m.Snapshot.Metadata.Index, "bytes", size)
	}
	_ = writeTimeout(c, []byte{st}, t.cfg.WriteTimeout)
}

func readSnapshotHeader(r io.Reader, limit int) (raftpb.Message, uint64, error) {
	var m raftpb.Message
	body, err := readFrame(r, nil, limit)
	if err != nil {
		return m, 0, err
	}
	if err := m.Unmarshal(body); err != nil {
		return m, 0, fmt.Errorf("%w: %v", ErrBadFrame, err)
	}
	if m.Type != raftpb.MsgSnap || m.Snapshot == nil {
		return m, 0, fmt.Errorf("%w: %s on a snapshot stream", ErrBadFrame, m.Type)
	}
	var size [8]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return m, 0, unexpected(err)
	}
	return m, binary.BigEndian.Uint64(size[:]), nil
}

// snapshotReader reads a snapshot's data out of its chunks. It returns
// io.EOF only after the end marker, with the size and checksum verified.
type snapshotReader struct {
	c    interface{ SetReadDeadline(time.Time) error } // the connection
	r    *bufio.Reader
	size uint64 // announced by the sender
	n    uint64 // data read so far
	left int    // data left in the current chunk
	sum  uint32
	err  error // sticky; io.EOF once verified
}

func (s *snapshotReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	_ = s.c.SetReadDeadline(time.Now().Add(snapshotReadTimeout))
	if s.left == 0 {
		if s.err = s.next(); s.err != nil {
			return 0, s.err
		}
	}
	n, err := s.r.Read(p[:min(len(p), s.left)])
	s.left -= n
	s.n += uint64(n)
	s.sum = crc32.Update(s.sum, castagnoli, p[:n])
	if err != nil {
		s.err = truncated(err)
	}
	return n, s.err
}

// next reads the next chunk's length, or the end marker and checksum.
func (s *snapshotReader) next() error {
	var h [4]byte
	if _, err := io.ReadFull(s.r, h[:]); err != nil {
		return truncated(err)
	}
	n := binary.BigEndian.Uint32(h[:])
	if n > chunkSize {
		return fmt.Errorf("%w: snapshot chunk of %d bytes", ErrBadFrame, n)
	}
	if n > 0 {
		s.left = int(n)
		return nil
	}
	if _, err := io.ReadFull(s.r, h[:]); err != nil {
		return truncated(err)
	}
	if s.n != s.size {
		return fmt.Errorf("%w: %d bytes, announced %d", ErrTruncated, s.n, s.size)
	}
	if got := binary.BigEndian.Uint32(h[:]); got != s.sum {
		return fmt.Errorf("%w: got %08x, computed %08x", ErrChecksum, got, s.sum)
	}
	return io.EOF
}

// truncated marks a read error inside a snapshot stream: even a clean end
// of the connection is a cut there.
func truncated(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: %w", ErrTruncated, err)
}
