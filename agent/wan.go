package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/meridian/meridian/lan"
	"github.com/meridian/meridian/rpc"
	"github.com/meridian/meridian/server"
	"github.com/meridian/meridian/wan"
)

// startWAN joins a server to the WAN gossip pool that spans every
// datacenter's servers, and fills in sc's federation settings.
func (a *Agent) startWAN(tags map[string]string, sc *server.Config) error {
	wc := wan.DefaultConfig()
	wc.Node = a.cfg.NodeName
	wc.Datacenter = a.cfg.Datacenter
	wc.BindAddr = a.cfg.BindAddr
	wc.BindPort = a.cfg.Ports.SerfWAN
	wc.AdvertiseAddr = a.cfg.AdvertiseAddrWAN
	if wc.AdvertiseAddr == "" {
		wc.AdvertiseAddr = a.advertise
	}
	wc.Tags = maps.Clone(tags)
	wc.EncryptKey = a.cfg.EncryptKey()
	wc.EncryptAcceptPlain, wc.EncryptSendPlain = !a.cfg.EncryptVerifyIncoming, !a.cfg.EncryptVerifyOutgoing
	wc.ReconnectTimeout = a.cfg.ReconnectTimeout
	wc.RejoinAfterLeave = a.cfg.RejoinAfterLeave
	wc.Links = a.cfg.Federation.Links
	if a.cfg.DataDir != "" && !a.cfg.Dev {
		wc.SnapshotPath = filepath.Join(a.cfg.DataDir, "serf", "remote.snapshot")
		wc.KeyringFile = filepath.Join(a.cfg.DataDir, "serf", "remote.keyring")
		if err := os.MkdirAll(filepath.Dir(wc.SnapshotPath), 0o700); err != nil {
			return fmt.Errorf("data_dir %s: %w", a.cfg.DataDir, err)
		}
	}
	wc.EventCh = a.wanEvents
	wc.Logger = a.logger.With("component", "wan")
	if a.opts.TuneWAN != nil {
		a.opts.TuneWAN(&wc)
	}
	pool, err := wan.New(wc)
	if err != nil {
		return fmt.Errorf("wan gossip: %w", err)
	}
	a.wan = pool

	links, dial, err := a.wanTLS()
	if err != nil {
		return err
	}
	sc.WAN = pool
	sc.Federation.Transport = a.cfg.WANTransport
	sc.Federation.Timeout = a.cfg.Federation.Timeout
	sc.Federation.TLS = links
	sc.Federation.DialTLS = dial
	sc.StaleView = a.cfg.Federation.StaleView
	return nil
}

// wanTLS is the TLS configuration of WAN links: the server port's
// certificates and CA (a link dialed to a server of dc checks its
// certificate for dc, see rpc.TLSConfigurator.WANConfig); else
// certificates derived from the gossip key, which every server of the
// federation shares; else ephemeral ones (encrypted links that
// authenticate no one, which configs.Warnings points out). dial is nil
// unless certificates are configured.
func (a *Agent) wanTLS() (links *tls.Config, dial func(dc string) *tls.Config, err error) {
	if links, dial = a.wanLinkTLS(); links != nil {
		return links, dial, nil
	}
	name := a.cfg.NodeName + "." + a.cfg.Datacenter
	if key := a.cfg.EncryptKey(); key != nil {
		links, err = rpc.ClusterTLS(key, name)
	} else {
		links, err = rpc.EphemeralTLS(name)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("wan link certificates: %w", err)
	}
	return links, nil, nil
}

// joinWAN runs start_join_wan (failing the start when no address answers)
// and starts retry_join_wan in the background.
func (a *Agent) joinWAN(ctx context.Context) error {
	if a.wan == nil {
		return nil
	}
	if len(a.cfg.StartJoinWAN) > 0 {
		if _, err := a.wan.Join(ctx, a.cfg.StartJoinWAN); err != nil {
			return fmt.Errorf("start_join_wan: %w", err)
		}
	}
	if len(a.cfg.RetryJoinWAN) > 0 {
		a.goFunc(func() {
			a.retry("WAN", a.wan.Join, a.cfg.RetryJoinWAN, a.cfg.RetryIntervalWAN, a.cfg.RetryMaxWAN)
		})
	}
	return nil
}

// handleWANEvents keeps the server's routing to other datacenters in step
// with WAN membership, and syncs with each server of its own datacenter
// that joins the pool.
func (a *Agent) handleWANEvents() {
	for {
		select {
		case <-a.ctx.Done():
			return
		case ev := <-a.wanEvents:
			a.server.NotifyWAN()
			if ev.Type == wan.MemberJoin {
				a.syncWAN(ev.Members)
			}
		}
	}
}

// wanSyncTimeout bounds one state exchange with a server of this
// datacenter.
const wanSyncTimeout = 10 * time.Second

// syncWAN exchanges the whole WAN member list (a join: memberlist's
// push/pull) with each server of this datacenter among members, in the
// background. Where datacenters do not all reach each other, a server
// that rejoins through one spoke learns from that spoke only the
// datacenters it links to, and would learn the other spokes' servers at
// the next periodic push/pull (tens of seconds); its own datacenter's
// servers know every datacenter it links to, so it learns them at once.
// (Consul's servers flood-join each other for the same reason.)
func (a *Agent) syncWAN(members []wan.Member) {
	self := a.wan.LocalMember().Name
	for _, m := range members {
		if _, dc, _ := wan.SplitName(m.Name); dc != a.cfg.Datacenter || m.Name == self || m.Addr == nil {
			continue
		}
		addr := net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port)))
		a.goFunc(func() {
			ctx, cancel := context.WithTimeout(a.ctx, wanSyncTimeout)
			defer cancel()
			if _, err := a.wan.Join(ctx, []string{addr}); err != nil && a.ctx.Err() == nil {
				a.logger.Warn("wan sync with a server of this datacenter failed", "server", m.Name, "addr", addr, "error", err)
			}
		})
	}
}

// retry keeps trying to join addrs until one join works, the attempts run
// out, or the agent stops.
func (a *Agent) retry(pool string, join func(context.Context, []string) (int, error), addrs []string, interval time.Duration, maxAttempts int) {
	for attempt := 1; ; attempt++ {
		n, err := join(a.ctx, addrs)
		if err == nil || n > 0 {
			a.logger.Info("joined gossip pool", "pool", pool, "contacted", n)
			return
		}
		if maxAttempts > 0 && attempt >= maxAttempts {
			a.logger.Error("retry join gave up", "pool", pool, "attempts", attempt, "error", err)
			return
		}
		a.logger.Warn("join failed, retrying", "pool", pool, "error", err, "in", interval)
		select {
		case <-a.ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// wanMembers lists the WAN pool, for /v1/agent/members?wan=1.
func (a *Agent) wanMembers() ([]lan.Member, error) {
	if a.wan == nil {
		return nil, fmt.Errorf("%w: only servers are in the WAN gossip pool", rpc.ErrBadRequest)
	}
	return a.wan.Members(), nil
}

var _ server.WANPool = (*wan.Pool)(nil)
