package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hatcheck/hatcheck"
)

// Store keeps encoded sessions by token. Its methods are called
// concurrently.
//
// A Store may also be a Locker; the Manager finds out by type assertion.
type Store interface {
	// Find returns the session stored under token; found is false when
	// there is none (never stored, deleted or expired).
	Find(ctx context.Context, token string) (b []byte, found bool, err error)
	// Commit stores b under token until expiry, replacing what was there.
	Commit(ctx context.Context, token string, b []byte, expiry time.Time) error
	// Delete removes the session stored under token, if any.
	Delete(ctx context.Context, token string) error
}

// Locker is a Store that can serialise the requests of one session across
// every server that shares the store (Manager.Lock).
type Locker interface {
	// TryLock takes the lock of token's session for at most ttl (after
	// which it is released anyway, in case its holder died) and reports
	// whether it got it. unlock releases it if it is still this holder's.
	TryLock(ctx context.Context, token string, ttl time.Duration) (unlock func(context.Context) error, ok bool, err error)
}

// StoreOption configures RedisStore and EmbeddedStore.
type StoreOption func(*storeOptions)

type storeOptions struct{ prefix string }

// Prefix sets the prefix of the keys that hold sessions (default
// "session:"); the lock of a session is under prefix + "lock:" + token.
func Prefix(p string) StoreOption { return func(o *storeOptions) { o.prefix = p } }

func buildOptions(opts []StoreOption) storeOptions {
	o := storeOptions{prefix: "session:"}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// RedisStore is a Store over a go-redis client: a hatcheck cluster reached
// by any node's address, by a list of them, or by Sentinel discovery
// (goredis.NewFailoverClient), which follows failovers. Sessions are
// strings with a time to live; RedisStore is also a Locker.
func RedisStore(client goredis.UniversalClient, opts ...StoreOption) Store {
	return &redisStore{c: client, storeOptions: buildOptions(opts)}
}

type redisStore struct {
	c goredis.UniversalClient
	storeOptions
}

func (s *redisStore) Find(ctx context.Context, token string) ([]byte, bool, error) {
	b, err := s.c.Get(ctx, s.prefix+token).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, false, nil
	}
	return b, err == nil, err
}

func (s *redisStore) Commit(ctx context.Context, token string, b []byte, expiry time.Time) error {
	ttl := time.Until(expiry)
	if ttl < time.Millisecond {
		return s.Delete(ctx, token) // already expired: nothing to keep
	}
	return s.c.Set(ctx, s.prefix+token, b, ttl).Err()
}

func (s *redisStore) Delete(ctx context.Context, token string) error {
	return s.c.Del(ctx, s.prefix+token).Err()
}

// unlockScript deletes the lock only if it still holds this holder's value.
var unlockScript = goredis.NewScript(`if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`)

func (s *redisStore) TryLock(ctx context.Context, token string, ttl time.Duration) (func(context.Context) error, bool, error) {
	key, holder := s.prefix+"lock:"+token, lockHolder()
	ok, err := s.c.SetNX(ctx, key, holder, ttl).Result()
	if err != nil || !ok {
		return nil, false, err
	}
	return func(ctx context.Context) error {
		return unlockScript.Run(ctx, s.c, []string{key}, holder).Err()
	}, true, nil
}

// EmbeddedStore is a Store on an embedded node (hatcheck.Open): the
// application servers themselves hold the sessions, replicated among them.
// It is also a Locker. With hatcheck.Config.NearCacheBytes, Find serves a
// session the node read recently from memory, still never stale; a lock's
// release invalidates the lock's key alone.
func EmbeddedStore(n *hatcheck.Node, opts ...StoreOption) Store {
	return &embeddedStore{n: n, storeOptions: buildOptions(opts)}
}

type embeddedStore struct {
	n *hatcheck.Node
	storeOptions
}

func (s *embeddedStore) Find(ctx context.Context, token string) ([]byte, bool, error) {
	return s.n.Get(ctx, s.prefix+token)
}

func (s *embeddedStore) Commit(ctx context.Context, token string, b []byte, expiry time.Time) error {
	ttl := time.Until(expiry)
	if ttl < time.Millisecond {
		return s.Delete(ctx, token)
	}
	return s.n.Set(ctx, s.prefix+token, b, ttl)
}

func (s *embeddedStore) Delete(ctx context.Context, token string) error {
	_, err := s.n.Delete(ctx, s.prefix+token)
	return err
}

func (s *embeddedStore) TryLock(ctx context.Context, token string, ttl time.Duration) (func(context.Context) error, bool, error) {
	key, holder := s.prefix+"lock:"+token, lockHolder()
	ok, err := s.n.SetNX(ctx, key, []byte(holder), ttl)
	if err != nil || !ok {
		return nil, false, err
	}
	return func(ctx context.Context) error {
		_, err := s.n.DeleteIf(ctx, key, []byte(holder))
		return err
	}, true, nil
}

// lockHolder is a random value that tells one holder of a lock from the
// next.
func lockHolder() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// SCS adapts a Store to github.com/alexedwards/scs/v2: the value it returns
// is both an scs.Store and an scs.CtxStore, so an scs application switches
// to hatcheck with one line:
//
//	sessionManager.Store = session.SCS(session.RedisStore(client))
func SCS(s Store) *SCSStore { return &SCSStore{s: s} }

// SCSStore is a Store seen through scs's interfaces. Its methods without a
// context use context.Background.
type SCSStore struct{ s Store }

// FindCtx implements scs.CtxStore.
func (a *SCSStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	return a.s.Find(ctx, token)
}

// CommitCtx implements scs.CtxStore.
func (a *SCSStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	return a.s.Commit(ctx, token, b, expiry)
}

// DeleteCtx implements scs.CtxStore.
func (a *SCSStore) DeleteCtx(ctx context.Context, token string) error {
	return a.s.Delete(ctx, token)
}

// Find implements scs.Store.
func (a *SCSStore) Find(token string) ([]byte, bool, error) {
	return a.s.Find(context.Background(), token)
}

// Commit implements scs.Store.
func (a *SCSStore) Commit(token string, b []byte, expiry time.Time) error {
	return a.s.Commit(context.Background(), token, b, expiry)
}

// Delete implements scs.Store.
func (a *SCSStore) Delete(token string) error {
	return a.s.Delete(context.Background(), token)
}
