package group

import (
	"encoding/binary"
	"errors"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// readRound is one ReadIndex request: every read that was waiting when it
// was issued, answered together.
type readRound struct {
	waiting []func(uint64, error)
	sent    time.Time
}

// run is the loop: the only goroutine that touches the RawNode.
func (g *Group) run() {
	defer g.wg.Done()
	tick := time.NewTicker(g.cfg.Tick)
	defer tick.Stop()
	var (
		out     []raftpb.Message
		reads   []func(uint64, error)
		rounds  = map[uint64]*readRound{}
		roundNo uint64
		props   []proposal
	)
	readTimeout := g.cfg.Tick * time.Duration(2*g.cfg.ElectionTicks)
	for {
		select {
		case <-g.stop:
			for _, r := range rounds {
				failReads(r.waiting, ErrStopped)
			}
			failReads(reads, ErrStopped)
			return
		case <-tick.C:
			if g.failed.Load() {
				// Silent (see fatal): no heartbeats, no campaigns. A
				// leader steps down when it hears of the next one.
				break
			}
			g.rn.Tick()
			// A round unanswered for two election timeouts will not be
			// answered (its messages were lost or the leader is gone).
			for id, r := range rounds {
				if time.Since(r.sent) > readTimeout {
					failReads(r.waiting, ErrReadAborted)
					delete(rounds, id)
				}
			}
		case p := <-g.propc:
			props = append(props[:0], p)
		drain:
			for len(props) < cap(g.propc) {
				select {
				case p := <-g.propc:
					props = append(props, p)
				default:
					break drain
				}
			}
			for _, p := range props {
				g.propose(p)
			}
			clear(props)
		case msgs := <-g.recvc:
			g.step(msgs)
		drainRecv:
			for {
				select {
				case msgs := <-g.recvc:
					g.step(msgs)
				default:
					break drainRecv
				}
			}
		case r := <-g.readc:
			reads = append(reads, r)
		drainReads:
			for {
				select {
				case r := <-g.readc:
					reads = append(reads, r)
				default:
					break drainReads
				}
			}
		case fn := <-g.ctlc:
			fn()
		}
		if len(reads) > 0 {
			// One round for every read waiting now; its context is this
			// process's nonce and the round's number, so that a late
			// answer meant for an earlier process never answers a round.
			roundNo++
			var ctx [16]byte
			binary.LittleEndian.PutUint64(ctx[:8], g.nonce)
			binary.LittleEndian.PutUint64(ctx[8:], roundNo)
			rounds[roundNo] = &readRound{waiting: reads, sent: time.Now()}
			reads = nil
			g.rn.ReadIndex(ctx[:])
		}
		for g.rn.HasReady() {
			rd := g.rn.Ready()
			if rd.SoftState != nil {
				g.softState(rd.SoftState, rounds)
			}
			if !raft.IsEmptyHardState(rd.HardState) {
				g.term.Store(rd.HardState.Term)
				g.commit.Store(rd.HardState.Commit)
			}
			for _, rs := range rd.ReadStates {
				if len(rs.RequestCtx) != 16 || binary.LittleEndian.Uint64(rs.RequestCtx[:8]) != g.nonce {
					continue
				}
				id := binary.LittleEndian.Uint64(rs.RequestCtx[8:])
				if r := rounds[id]; r != nil {
					delete(rounds, id)
					for _, done := range r.waiting {
						done(rs.Index, nil)
					}
				}
			}
			out = out[:0]
			for _, m := range rd.Messages {
				switch m.To {
				case raft.LocalAppendThread:
					g.appendq.push(appendJob{msg: m})
				case raft.LocalApplyThread:
					g.applyq.push(applyJob{msg: m})
				default:
					out = append(out, m)
				}
			}
			if len(out) > 0 && !g.failed.Load() {
				g.cfg.Transport.Send(out)
			}
		}
	}
}

func failReads(rs []func(uint64, error), err error) {
	for _, done := range rs {
		done(0, err)
	}
}

func (g *Group) step(msgs []raftpb.Message) {
	for _, m := range msgs {
		if err := g.rn.Step(m); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) && !errors.Is(err, raft.ErrStepLocalMsg) {
			g.log.Debug("raft refused a message", "type", m.Type.String(), "from", m.From, "err", err)
		}
	}
}

// propose hands one proposal to raft. Raft refuses it at once on a
// follower (proposal forwarding is off: the caller forwards to the leader
// itself, and needs to know the proposal went nowhere).
func (g *Group) propose(p proposal) {
	id := g.register(p.done)
	var err error
	if p.cc != nil {
		cc := *p.cc
		cc.Context = append(id[:len(id):len(id)], cc.Context...)
		err = g.rn.ProposeConfChange(cc)
	} else {
		copy(p.data, id[:])
		err = g.rn.Propose(p.data)
	}
	if err != nil {
		if done := g.take(id); done != nil {
			done(nil, ErrDropped)
		}
	}
}

// softState publishes a change of leader or role. A leader that stops
// leading fails its proposals still waiting: they may yet commit under the
// next leader, so their outcome is unknown. Read rounds fail too (reads may
// simply be retried).
func (g *Group) softState(ss *raft.SoftState, rounds map[uint64]*readRound) {
	wasLeader := g.isLeader.Load()
	leads := ss.RaftState == raft.StateLeader
	g.isLeader.Store(leads)
	g.state.Store(uint64(ss.RaftState))
	oldLeader := g.leader.Swap(ss.Lead)
	if wasLeader && !leads {
		g.failPending(ErrUnknownOutcome)
	}
	if oldLeader != ss.Lead {
		for id, r := range rounds {
			failReads(r.waiting, ErrReadAborted)
			delete(rounds, id)
		}
		st := g.rn.BasicStatus()
		g.term.Store(st.Term)
		name := "" // none while no leader is known
		if m, ok := g.members.get(ss.Lead); ok {
			name = m.Name
		}
		g.log.Info("leader changed", "leader", name, "leader_id", ss.Lead, "term", st.Term, "state", ss.RaftState.String())
		if g.cfg.OnLeaderChange != nil {
			g.cfg.OnLeaderChange(ss.Lead, st.Term)
		}
	}
}
