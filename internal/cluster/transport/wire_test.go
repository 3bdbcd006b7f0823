package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"testing"
	"testing/iotest"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// Marshaling into a reused batch buffer allocates nothing.
func TestAppendFrameDoesNotAllocate(t *testing.T) {
	m := app(1, 8, 1024)
	buf := make([]byte, 0, 64<<10)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if buf, err = appendFrame(buf[:0], &m, 1<<20); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per frame", allocs)
	}
}

// Frames are read correctly whatever the reads return: one byte at a time,
// and frames larger than the read buffer, read into a growing buffer.
func TestFramesAcrossPartialReads(t *testing.T) {
	var stream []byte
	var want []raftpb.Message
	for i, size := range []int{0, 1, 100, 1024, 70_000, 300_000, 5} {
		m := app(uint64(i), 1, size)
		want = append(want, m)
		var err error
		if stream, err = appendFrame(stream, &m, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(stream)), 16)
	var got []raftpb.Message
	var buf []byte
	for {
		var err error
		buf, err = readFrame(r, buf, 1<<20)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var m raftpb.Message
		if err := m.Unmarshal(buf); err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	sameMessages(t, got, want)
}

// A frame that announces far more than arrives costs what arrived, not
// what was announced.
func TestBogusLengthDoesNotAllocateIt(t *testing.T) {
	stream := binary.BigEndian.AppendUint32(nil, 1<<30)
	stream = append(stream, make([]byte, 100_000)...)
	buf, err := readFrame(bytes.NewReader(stream), nil, 1<<30)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err %v, want io.ErrUnexpectedEOF", err)
	}
	if cap(buf) > 1<<20 {
		t.Errorf("buffer of %d bytes for 100 kB received", cap(buf))
	}
}

type noDeadline struct{}

func (noDeadline) SetReadDeadline(time.Time) error { return nil }

// chunked encodes data as a snapshot stream's chunks and end marker.
func chunked(data []byte, chunk int) []byte {
	var out []byte
	for rest := data; len(rest) > 0; {
		n := min(chunk, len(rest))
		out = binary.BigEndian.AppendUint32(out, uint32(n))
		out = append(out, rest[:n]...)
		rest = rest[n:]
	}
	out = binary.BigEndian.AppendUint32(out, 0)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(data, castagnoli))
}

// The snapshot reader verifies size and checksum whatever the reads
// return, and a stream ending anywhere before its end marker is truncated.
func TestSnapshotReader(t *testing.T) {
	data := snapshotData(100_000)
	stream := chunked(data, 7_000)
	read := func(stream []byte, size int) ([]byte, error) {
		r := bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(stream)), 16)
		sr := &snapshotReader{c: noDeadline{}, r: r, size: uint64(size)}
		return io.ReadAll(iotest.OneByteReader(sr))
	}
	got, err := read(stream, len(data))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, err %v", len(got), err)
	}
	if _, err := read(stream, len(data)+1); !errors.Is(err, ErrTruncated) {
		t.Errorf("wrong size: err %v, want ErrTruncated", err)
	}
	for _, cut := range []int{0, 3, 4, 5000, len(stream) - 8, len(stream) - 5, len(stream) - 1} {
		if _, err := read(stream[:cut], len(data)); !errors.Is(err, ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("cut at %d: err %v, want ErrTruncated", cut, err)
		}
	}
	bad := bytes.Clone(stream)
	bad[10] ^= 1
	if _, err := read(bad, len(data)); !errors.Is(err, ErrChecksum) {
		t.Errorf("flipped bit: err %v, want ErrChecksum", err)
	}
}
