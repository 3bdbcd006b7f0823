package session

import (
	"context"
	"encoding/base64"
	"math"
	"time"
)

// The typed getters return the zero value when the session has no such
// key or its value has another type. They also accept what JSONCodec
// gives back for a value of their type: a float64 for a number, a string
// for a time or a byte slice.

// GetString returns key's value as a string.
func (m *Manager) GetString(ctx context.Context, key string) string { return asString(m.Get(ctx, key)) }

// GetBool returns key's value as a bool.
func (m *Manager) GetBool(ctx context.Context, key string) bool { return asBool(m.Get(ctx, key)) }

// GetInt returns key's value as an int.
func (m *Manager) GetInt(ctx context.Context, key string) int { return int(asInt(m.Get(ctx, key))) }

// GetInt64 returns key's value as an int64.
func (m *Manager) GetInt64(ctx context.Context, key string) int64 { return asInt(m.Get(ctx, key)) }

// GetInt32 returns key's value as an int32.
func (m *Manager) GetInt32(ctx context.Context, key string) int32 {
	return int32(asInt(m.Get(ctx, key)))
}

// GetFloat returns key's value as a float64.
func (m *Manager) GetFloat(ctx context.Context, key string) float64 { return asFloat(m.Get(ctx, key)) }

// GetBytes returns key's value as a byte slice.
func (m *Manager) GetBytes(ctx context.Context, key string) []byte { return asBytes(m.Get(ctx, key)) }

// GetTime returns key's value as a time.Time.
func (m *Manager) GetTime(ctx context.Context, key string) time.Time { return asTime(m.Get(ctx, key)) }

// PopString is GetString, and removes the key.
func (m *Manager) PopString(ctx context.Context, key string) string { return asString(m.Pop(ctx, key)) }

// PopBool is GetBool, and removes the key.
func (m *Manager) PopBool(ctx context.Context, key string) bool { return asBool(m.Pop(ctx, key)) }

// PopInt is GetInt, and removes the key.
func (m *Manager) PopInt(ctx context.Context, key string) int { return int(asInt(m.Pop(ctx, key))) }

// PopFloat is GetFloat, and removes the key.
func (m *Manager) PopFloat(ctx context.Context, key string) float64 { return asFloat(m.Pop(ctx, key)) }

// PopBytes is GetBytes, and removes the key.
func (m *Manager) PopBytes(ctx context.Context, key string) []byte { return asBytes(m.Pop(ctx, key)) }

// PopTime is GetTime, and removes the key.
func (m *Manager) PopTime(ctx context.Context, key string) time.Time { return asTime(m.Pop(ctx, key)) }

func asString(v any) string {
	s, _ := v.(string)
	return s
}

func asBool(v any) bool {
	b, _ := v.(bool)
	return b
}

func asInt(v any) int64 {
	switch n := v.(type) {
	case int:
		return int64(n)
	case int64:
		return n
	case int32:
		return int64(n)
	case float64: // JSON
		if n == math.Trunc(n) && math.Abs(n) <= 1<<53 {
			return int64(n)
		}
	}
	return 0
}

func asFloat(v any) float64 {
	switch n := v.(type) {
	case float64:
		return n
	case float32:
		return float64(n)
	}
	return 0
}

func asBytes(v any) []byte {
	switch b := v.(type) {
	case []byte:
		return b
	case string: // JSON: base64
		if d, err := base64.StdEncoding.DecodeString(b); err == nil {
			return d
		}
	}
	return nil
}

func asTime(v any) time.Time {
	switch t := v.(type) {
	case time.Time:
		return t
	case string: // JSON: RFC 3339
		if p, err := time.Parse(time.RFC3339Nano, t); err == nil {
			return p
		}
	}
	return time.Time{}
}
