// Command imipd is the daemon: it wires what the configuration (package
// config) names: the milter, the LMTP proxy, the HTTP listener (push
// endpoint, health, metrics), the CalDAV server and feed, the outbox sender
// and the admin socket, around one decision call (package filter) and one
// store (package calstore: the bbolt file, or PostgreSQL).
//
// Usage:
//
//	imipd                       run on the embedded defaults (data in ./imipd-data,
//	                            milter on inet:127.0.0.1:8891, HTTP on 127.0.0.1:8009)
//	imipd -config FILE          run with a configuration file (TOML)
//	imipd -config FILE -test    check the configuration, report every error by key, exit
//
// SIGTERM or SIGINT: stop accepting, finish in-flight messages, close the
// store, exit 0.
//
// Exit status: 0 after a clean stop, 1 on any other error (configuration,
// a listener), 2 on a usage error, 3 (exitStoreDamaged) when the store file
// is damaged or not a bbolt file: found at Open or by the page check at
// start. Restarting cannot help with 3; contrib's systemd unit does not.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
	_ "time/tzdata" // IANA zones on machines without /usr/share/zoneinfo

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"imipd/caldav"
	"imipd/calstore"
	"imipd/config"
	"imipd/filter"
	"imipd/filter/admin"
	"imipd/filter/conn"
	"imipd/filter/lmtp"
	"imipd/filter/milter"
	"imipd/filter/push"
	"imipd/outbox"
)

// exitStoreDamaged is the exit status for a damaged store file
// (calstore.ErrCorrupt); contrib/systemd/imipd.service names it in
// RestartPreventExitStatus.
const exitStoreDamaged = 3

// exitStatus maps run's error to the process's exit status.
func exitStatus(err error) int {
	if errors.Is(err, calstore.ErrCorrupt) {
		return exitStoreDamaged
	}
	return 1
}

// shutdownGrace bounds how long in-flight work may take at shutdown; below
// systemd's default TimeoutStopSec (90 s).
const shutdownGrace = 60 * time.Second

func main() {
	cfgPath := flag.String("config", "", "configuration file (TOML); without it, the embedded defaults")
	test := flag.Bool("test", false, "check the configuration and exit")
	logJSON := flag.Bool("log-json", false, "log JSON lines instead of text")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "imipd: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "imipd: configuration errors:\n%v\n", err)
		os.Exit(1)
	}
	if *test {
		for _, w := range cfg.Warnings {
			fmt.Fprintf(os.Stderr, "imipd: warning: %s\n", w)
		}
		fmt.Println("configuration ok")
		return
	}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, nil)
	if *logJSON {
		h = slog.NewJSONHandler(os.Stderr, nil)
	}
	log := slog.New(h)
	// Libraries that log through the standard log package end up in the
	// same structured log; go-milter's warnings at level Warn.
	slog.SetDefault(log)
	milter.SetLibraryLog(log)
	for _, w := range cfg.Warnings {
		log.Warn("configuration", "warning", w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		code := exitStatus(err)
		if code == exitStoreDamaged {
			log.Error("store file damaged; not starting: restore it from a backup (or rescue what is readable with `bbolt compact`)",
				"path", cfg.DBPath(), "err", err, "exit", code)
		} else {
			log.Error("imipd stopped", "err", err)
		}
		os.Exit(code)
	}
}

// run starts every configured listener and blocks until ctx ends or a
// listener fails, then shuts down in order: listeners stop accepting,
// in-flight work finishes, the store closes.
func run(ctx context.Context, cfg config.Settings, log *slog.Logger) error {
	if err := cfg.EnsureDataDir(); err != nil {
		return err
	}
	db, err := cfg.OpenStore(ctx, calstore.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	// The page structure of a bbolt file, checked before anything writes
	// (bbolt's check in a read transaction must not run alongside
	// writers): a damaged file stops imipd here, with one log line and
	// exit status 3, rather than failing every message later. PostgreSQL
	// checks its own pages.
	if bdb, ok := db.(*calstore.DB); ok {
		start := time.Now()
		if err := bdb.CheckPages(ctx); err != nil {
			return err
		}
		log.Info("store checked", "path", cfg.DBPath(), "took", time.Since(start).Round(time.Millisecond))
	} else {
		log.Info("store opened", "driver", cfg.Store.Driver)
	}
	// Catch-up after downtime: the stretch since the last sign of life is
	// recorded for `imipctl catchup`; a failure here costs the catch-up
	// record, never the start.
	if d, ok, err := filter.RecordStart(ctx, db, time.Now()); err != nil {
		log.Warn("downtime not recorded", "err", err)
	} else if ok {
		log.Info("downtime recorded: mail that passed meanwhile is untagged until `imipctl catchup`",
			"from", d.From.Format(time.RFC3339), "to", d.To.Format(time.RFC3339))
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := filter.NewMetrics(reg, func() float64 { return outboxQueued(db) })
	proc := &filter.Processor{Store: db, Cfg: cfg.Processor, Log: log, Metrics: metrics}
	// The outbox sender ([submission] address; "" leaves items queued).
	var sender *outbox.Sender
	if opt := cfg.Outbox; opt.Address != "" {
		opt.Now = proc.Now
		sender = outbox.New(db, opt, log.With("component", "outbox"))
		proc.OnEnqueue = sender.Kick
	}

	var servers []server
	adminLn, err := admin.Listen(cfg.AdminSocket())
	if err != nil {
		return err
	}
	adm := &admin.Server{Log: log, Env: func() admin.Env { return admin.Env{Cfg: cfg, Store: db, Proc: proc} }}
	servers = append(servers, server{"admin", adminLn, adm.Serve, adm.Shutdown})

	// fail closes the listeners opened so far and returns err.
	fail := func(err error) error {
		closeAll(servers)
		return err
	}
	listen := func(l config.Listener, name string) (net.Listener, error) {
		l.Options.Log = log.With("listener", name)
		ln, err := conn.Listen(l.Addr, l.Options)
		if err != nil {
			return nil, fail(fmt.Errorf("%s.listen: %w", name, err))
		}
		return ln, nil
	}
	if cfg.MilterListen.Addr != "" {
		ln, err := listen(cfg.MilterListen, "milter")
		if err != nil {
			return err
		}
		m := milter.New(proc, cfg.Milter, log.With("listener", "milter"))
		servers = append(servers, server{"milter", ln, m.Serve, m.Shutdown})
	}
	if cfg.LMTPListen.Addr != "" {
		ln, err := listen(cfg.LMTPListen, "lmtp")
		if err != nil {
			return err
		}
		l := lmtp.NewProxy(proc, cfg.LMTP, log.With("listener", "lmtp"))
		servers = append(servers, server{"lmtp", ln, l.Serve, l.Shutdown})
	}
	if cfg.HTTPListen.Addr != "" {
		opt := cfg.HTTP
		opt.Gatherer, opt.Ready = reg, filter.StoreReady(db)
		handler, err := push.NewHandler(proc, opt, log.With("listener", "http"))
		if err != nil {
			return fail(fmt.Errorf("http: %w", err))
		}
		ln, err := listen(cfg.HTTPListen, "http")
		if err != nil {
			return err
		}
		servers = append(servers, httpServer("http", ln, handler, nil, log))
	}

	if cfg.CalDAVListen != "" {
		// CalDAV and the ICS feed for users' calendar apps (off by default).
		opt := cfg.CalDAV
		opt.Now = proc.Time
		handler := caldav.New(db, proc, opt, log.With("listener", "caldav"))
		var tlsConf *tls.Config
		if cfg.CalDAVCert != "" {
			cert, err := tls.LoadX509KeyPair(cfg.CalDAVCert, cfg.CalDAVKey)
			if err != nil {
				return fail(fmt.Errorf("caldav.cert: %w", err))
			}
			tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		ln, err := net.Listen("tcp", cfg.CalDAVListen)
		if err != nil {
			return fail(fmt.Errorf("caldav.listen: %w", err))
		}
		servers = append(servers, httpServer("caldav", ln, handler, tlsConf, log))
	}

	failed := make(chan error, len(servers))
	var wg sync.WaitGroup
	for _, s := range servers {
		log.Info("listening", "listener", s.name, "addr", s.ln.Addr().String())
		wg.Add(1)
		go func(s server) {
			defer wg.Done()
			if err := s.serve(s.ln); err != nil {
				failed <- fmt.Errorf("%s: %w", s.name, err)
			}
		}(s)
	}
	aliveCtx, stopAlive := context.WithCancel(context.Background())
	defer stopAlive()
	aliveDone := make(chan struct{})
	go func() {
		defer close(aliveDone)
		filter.KeepAlive(aliveCtx, db, filter.AliveInterval, proc.Time, log)
	}()
	outboxCtx, stopOutbox := context.WithCancel(context.Background())
	defer stopOutbox()
	outboxDone := make(chan struct{})
	go func() {
		defer close(outboxDone)
		if sender != nil {
			if err := sender.Run(outboxCtx); err != nil {
				log.Error("outbox sender stopped", "err", err)
			}
		}
	}()
	log.Info("imipd started", "data_dir", cfg.DataDir, "local_domains", cfg.Processor.LocalDomains, "default_policy", cfg.Processor.DefaultPolicy)
	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-failed:
		log.Error("listener failed, shutting down", "err", runErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	// Mail listeners first, the admin socket last.
	for i := len(servers) - 1; i >= 0; i-- {
		if err := servers[i].shutdown(sctx); err != nil {
			log.Warn("shutdown incomplete", "listener", servers[i].name, "err", err)
		}
	}
	wg.Wait()
	// The sender finishes the message in flight before the store closes.
	stopOutbox()
	<-outboxDone
	// The last sign of life: the next downtime begins at this clean stop.
	stopAlive()
	<-aliveDone
	log.Info("imipd stopped")
	return runErr
}

type server struct {
	name     string
	ln       net.Listener
	serve    func(net.Listener) error
	shutdown func(context.Context) error
}

// httpServer serves handler on ln, over TLS when tlsConf is set, with the
// daemon's HTTP timeouts.
func httpServer(name string, ln net.Listener, handler http.Handler, tlsConf *tls.Config, log *slog.Logger) server {
	hs := &http.Server{Handler: handler, TLSConfig: tlsConf, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 5 * time.Minute,
		WriteTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	serve := func(ln net.Listener) error {
		var err error
		if tlsConf != nil {
			err = hs.ServeTLS(ln, "", "")
		} else {
			err = hs.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
	return server{name, ln, serve, hs.Shutdown}
}

func closeAll(ss []server) {
	for _, s := range ss {
		s.ln.Close()
	}
}

// outboxQueued is the number of queued outbox items for the metrics
// scrape: the store's counter, no item is read.
func outboxQueued(db calstore.Store) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n := 0
	db.Read(ctx, func(tx calstore.Tx) error {
		var err error
		n, err = tx.OutboxQueued()
		return err
	})
	return float64(n)
}
