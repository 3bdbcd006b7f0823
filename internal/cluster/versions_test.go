package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
)

// incr is INCRBYFLOAT, an op of this release, not of the one before.
func incr(key, by string) command.Tx {
	return command.Tx{{Op: command.OpIncrByFloat, Key: []byte(key), Args: [][]byte{[]byte(by)}}}
}

// Mixed versions during a rolling upgrade: n3 plays a node of the release
// before (command.LegacyOps), which has no INCRBYFLOAT. The leader refuses
// INCRBYFLOAT while n3 is a member, serves SET, and takes INCRBYFLOAT once
// n3 is upgraded. An entry
// that reaches a node which cannot apply it (here forced past the leader's
// check) stops that node before the entry, and the upgraded node applies
// it and goes on.
func TestMixedVersionsDuringAnUpgrade(t *testing.T) {
	if int(command.OpIncrByFloat) < command.LegacyOps {
		t.Fatal("INCRBYFLOAT is not newer than LegacyOps")
	}
	nodes := startCluster(t, 3, func(c *Config) {
		if c.NodeID == "n3" {
			c.LogOps = command.LegacyOps
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader, _ := leaderOf(t, nodes)
	if _, err := leader.Write(ctx, set("k", "v")); err != nil {
		t.Fatalf("SET, an op every node applies: %v", err)
	}
	if _, err := leader.Write(ctx, incr("f", "1.5")); !errors.Is(err, ErrNotUpgraded) {
		t.Fatalf("INCRBYFLOAT with an older member: %v, want ErrNotUpgraded", err)
	}
	done := make(chan error, 1)
	nodes[1].WriteAsync(incr("f", "1.5"), func(_ command.TxResult, err error) { done <- err })
	// Forwarded from a follower, the error travels as its text.
	if err := <-done; err == nil || !strings.Contains(err.Error(), ErrNotUpgraded.Error()) {
		t.Fatalf("INCRBYFLOAT through WriteAsync on n2: %v, want ErrNotUpgraded", err)
	}
	leader.WriteAsync(incr("f", "1.5"), func(_ command.TxResult, err error) { done <- err })
	if err := <-done; !errors.Is(err, ErrNotUpgraded) {
		t.Fatalf("INCRBYFLOAT through WriteAsync on the leader: %v, want ErrNotUpgraded", err)
	}
	if r, err := leader.Read(ctx, &command.Cmd{Op: command.OpGet, Key: []byte("f")}); err != nil || r.Kind != command.KindNil {
		t.Fatalf("a refused INCRBYFLOAT was written: %+v %v", r, err)
	}

	// Forced past the check, the entry stops n3 before it.
	leader.opsFloor.Store(int64(command.Ops()))
	leader.floorMu.Lock()
	leader.floorAsked = time.Now().Add(time.Hour) // no refresh lowers it again
	leader.floorMu.Unlock()
	if _, err := leader.Write(ctx, incr("f", "2")); err != nil {
		t.Fatalf("forced INCRBYFLOAT (a majority applies it): %v", err)
	}
	n3 := nodes[2]
	deadline := time.Now().Add(20 * time.Second)
	for !errors.Is(n3.Healthy(), ErrUpgradeNeeded) {
		if time.Now().After(deadline) {
			t.Fatalf("n3 applied or skipped an entry it cannot apply: Healthy = %v", n3.Healthy())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := n3.Read(ctx, &command.Cmd{Op: command.OpGet, Key: []byte("k")}); err == nil {
		t.Fatal("a halted node still serves reads")
	}

	// Upgraded (restarted with the current ops, same data and address),
	// n3 applies the entry, and INCRBYFLOAT is no longer refused.
	cfg := n3.cfg
	n3.Close()
	cfg.LogOps, cfg.PeerAddr, cfg.Meta = 0, n3.PeerAddr(), nil
	up, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	for {
		r, err := up.Read(ctx, &command.Cmd{Op: command.OpGet, Key: []byte("f")})
		if err == nil && string(r.Bulk) == "2" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the upgraded node: %+v %v", r, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	leader.floorMu.Lock()
	leader.floorAsked = time.Time{}
	leader.floorMu.Unlock()
	if _, err := leader.Write(ctx, incr("f", "0.5")); err != nil {
		t.Fatalf("INCRBYFLOAT once every node is upgraded: %v", err)
	}
}

// A member that is down, and whose version the leader never learnt, does
// not make the leader refuse the commands of this release: the others
// keep serving them (should the member be older, it stops at such an
// entry when it returns, as above).
func TestDownMemberOfUnknownVersionDoesNotBlockNewCommands(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leader, followers := leaderOf(t, nodes)
	down := followers[0]
	down.Close()
	leader.metaMu.Lock()
	delete(leader.members, down.ID()) // nothing learnt of it
	leader.metaMu.Unlock()
	if _, err := leader.Write(ctx, incr("f", "1")); err != nil {
		t.Fatalf("INCRBYFLOAT with a member down: %v", err)
	}
}
