package session

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"sync"
	"time"
)

// Codec turns a session's deadline and values into the bytes a Store keeps,
// and back. Its methods are called concurrently.
type Codec interface {
	Encode(deadline time.Time, values map[string]any) ([]byte, error)
	Decode(b []byte) (deadline time.Time, values map[string]any, err error)
}

// GobCodec encodes sessions with encoding/gob, the default. Go's basic
// types and time.Time work as they are; values of types of your own must
// be registered with gob.Register before they are stored.
type GobCodec struct{}

// registerTime registers time.Time with gob, once, before the first use.
var registerTime sync.Once

func gobReady() { registerTime.Do(func() { gob.Register(time.Time{}) }) }

type gobSession struct {
	Deadline time.Time
	Values   map[string]any
}

// Encode implements Codec.
func (GobCodec) Encode(deadline time.Time, values map[string]any) ([]byte, error) {
	gobReady()
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(gobSession{deadline, values}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Decode implements Codec.
func (GobCodec) Decode(b []byte) (time.Time, map[string]any, error) {
	gobReady()
	var s gobSession
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&s); err != nil {
		return time.Time{}, nil, err
	}
	return s.Deadline, s.Values, nil
}

// JSONCodec encodes sessions as JSON, readable by applications in other
// languages. Numbers come back as float64 (GetInt and the other typed
// getters convert them), times as RFC 3339 strings (GetTime parses them),
// and byte slices as base64 strings (GetBytes decodes them).
type JSONCodec struct{}

type jsonSession struct {
	Deadline time.Time      `json:"deadline"`
	Values   map[string]any `json:"values"`
}

// Encode implements Codec.
func (JSONCodec) Encode(deadline time.Time, values map[string]any) ([]byte, error) {
	return json.Marshal(jsonSession{deadline, values})
}

// Decode implements Codec.
func (JSONCodec) Decode(b []byte) (time.Time, map[string]any, error) {
	var s jsonSession
	if err := json.Unmarshal(b, &s); err != nil {
		return time.Time{}, nil, err
	}
	return s.Deadline, s.Values, nil
}
