package fakeprovider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxBody is the largest request body the fake reads; larger is a 413.
const maxBody = 8 << 20

// maxJournal bounds the request journal; older entries are dropped.
const maxJournal = 100_000

// Server is a fake vendor API, shaped like httptest.Server: NewServer
// starts it on a loopback port; NewUnstartedServer plus Transport runs it
// over an in-memory transport instead, which works inside testing/synctest.
// Its clock starts when it is created (or Reset) and reads virtual time
// under synctest. Methods are safe for concurrent use.
type Server struct {
	// URL is the base URL, "http://127.0.0.1:PORT" once started, or
	// "http://fake.<vendor>.invalid" for the in-memory transport.
	URL string

	cfg     Config
	prices  map[string]ListPrice
	api     vendorAPI
	httpSrv *http.Server
	tcp     net.Listener
	mem     *memListener
	// life ends when Close starts: every request's context derives from it
	// (http.Server.BaseContext), so hangs, latencies and streams end with it.
	life context.Context
	stop context.CancelFunc

	mu       sync.Mutex
	start    time.Time
	faults   []Fault
	states   []*faultState
	seq      uint64
	journal  []JournalEntry
	invoice  []InvoiceLine
	charges  []charge // each invoice line's cost by kind of token, for the reports
	started  bool
	closed   bool
	inflight int           // requests being served
	drained  chan struct{} // closed when inflight reaches 0 after Close
	serveErr chan error
}

// NewServer starts a fake on 127.0.0.1 with a random port. It panics if the
// config is invalid or the port cannot be had, as httptest.NewServer does;
// use NewUnstartedServer to get the error.
func NewServer(cfg Config) *Server {
	s, err := NewUnstartedServer(cfg)
	if err != nil {
		panic(err)
	}
	if err := s.Start(); err != nil {
		panic(err)
	}
	return s
}

// NewUnstartedServer validates cfg and returns a fake that serves the
// in-memory transport at once and loopback TCP after Start.
func NewUnstartedServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("fakeprovider: %w", err)
	}
	if cfg.Epoch.IsZero() {
		cfg.Epoch = DefaultEpoch
	}
	s := &Server{
		URL:     "http://fake." + string(cfg.Vendor) + ".invalid",
		cfg:     cfg,
		api:     vendorFor(cfg.Vendor),
		prices:  ListPrices(),
		drained: make(chan struct{}),
		start:   time.Now(),
	}
	for name, m := range cfg.Models {
		if m.Price != nil {
			s.prices[name] = *m.Price
		}
	}
	s.setFaults(cfg.Faults)
	s.life, s.stop = context.WithCancel(context.Background())
	s.httpSrv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return s.life }}
	s.mem = newMemListener(s)
	s.serveErr = make(chan error, 2)
	go func() { s.serveErr <- s.httpSrv.Serve(s.mem) }()
	return s, nil
}

// Start serves loopback TCP on 127.0.0.1 with a random port and sets URL.
func (s *Server) Start() error { return s.StartAt("127.0.0.1:0") }

// StartAt serves TCP on addr (host:port; port 0 picks a free one) and sets URL.
func (s *Server) StartAt(addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return errors.New("fakeprovider: Start called twice or after Close")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("fakeprovider: listen on %s: %w", addr, err)
	}
	s.tcp = &outageListener{Listener: l, srv: s}
	s.started = true
	s.URL = "http://" + l.Addr().String()
	go func() { s.serveErr <- s.httpSrv.Serve(s.tcp) }()
	return nil
}

// Close ends hung requests and running streams, waits for in-flight
// requests to finish, and closes every connection. Requests that arrive
// after Close get their connection cut.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	if s.inflight == 0 {
		close(s.drained)
	}
	s.mu.Unlock()
	s.stop()
	<-s.drained
	_ = s.httpSrv.Close()
}

// enter counts a request in, unless the fake is closed.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.inflight++
	return true
}

func (s *Server) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight--
	if s.inflight == 0 && s.closed {
		close(s.drained)
	}
}

// Client returns an HTTP client for the fake: over loopback TCP once the
// server is started, otherwise over the in-memory transport.
func (s *Server) Client() *http.Client {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if started {
		return &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}
	}
	return &http.Client{Transport: s.Transport()}
}

// Transport returns an in-memory http.RoundTripper to the fake: each
// connection is a net.Pipe served by the same http.Server, so the fake's
// behaviour is identical to TCP, and timers run on synctest's virtual clock
// when the fake was created inside a bubble. Requests go to the fake
// whatever host they name.
func (s *Server) Transport() *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         s.mem.dial,
		MaxIdleConnsPerHost: 64,
	}
}

// Vendor returns the wire format the fake speaks.
func (s *Server) Vendor() Vendor { return s.cfg.Vendor }

// Now returns the time on the fake's clock: since it was created or reset.
func (s *Server) Now() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Since(s.start)
}

// SetFaults replaces the fault list at run time; counts and quota buckets
// start afresh.
func (s *Server) SetFaults(faults []Fault) error {
	c := s.cfg
	c.Faults = faults
	if err := c.Validate(); err != nil {
		return fmt.Errorf("fakeprovider: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setFaults(faults)
	return nil
}

func (s *Server) setFaults(faults []Fault) {
	s.faults = slices.Clone(faults)
	s.states = make([]*faultState, len(faults))
	for i := range s.states {
		s.states[i] = &faultState{}
	}
}

// Faults returns the current fault list.
func (s *Server) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.faults)
}

// Invoice returns what the fake has billed.
func (s *Server) Invoice() Invoice {
	s.mu.Lock()
	defer s.mu.Unlock()
	return newInvoice(s.cfg.Vendor, slices.Clone(s.invoice))
}

// Journal returns the requests the fake received, oldest first.
func (s *Server) Journal() []JournalEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.journal)
}

// Reset clears the journal and the invoice, restarts the clock and the
// request sequence (and with it the seeded dice), and resets fault state.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.start = time.Now()
	s.seq = 0
	s.journal = nil
	s.invoice, s.charges = nil, nil
	s.setFaults(s.faults)
}

// outageNow reports whether an outage fault covers the fake's clock now.
func (s *Server) outageNow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Since(s.start)
	for _, f := range s.faults {
		if f.Kind == FaultOutage && f.inWindow(now) {
			return true
		}
	}
	return false
}

// ServeHTTP implements http.Handler: the control API under /_fake/, the
// vendor's API elsewhere.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		panic(http.ErrAbortHandler)
	}
	defer s.leave()
	if strings.HasPrefix(r.URL.Path, "/_fake/") {
		s.control(w, r)
		return
	}
	if s.serveReport(w, r) {
		return
	}
	c := s.newCall(w, r)
	defer c.record() // for the paths that end without a last write
	c.serve()
}

func (s *Server) addJournal(e JournalEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.journal = append(s.journal, e)
	if len(s.journal) > maxJournal {
		s.journal = slices.Delete(s.journal, 0, len(s.journal)-maxJournal)
	}
}

// admit assigns the request its sequence number and its dice, and runs the
// faults over it. The dice are a PCG stream keyed by (seed, sequence), so
// the same seed and request order give the same choices.
// A request already answered with an error (withFaults false) takes its
// sequence number but no fault sees it.
func (s *Server) admit(req *request, withFaults bool) (*rand.Rand, *plan, time.Duration, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	seq := s.seq
	now := time.Since(s.start)
	r := rand.New(rand.NewPCG(s.cfg.Seed, seq))
	p := newPlan()
	in := faultInput{now: now, model: req.model, tokens: req.estimate(), input: req.inputTokens(), stream: req.stream, vendor: s.cfg.Vendor}
	for i := range s.faults {
		if !withFaults {
			break
		}
		f := &s.faults[i]
		if !f.inWindow(now) || !f.appliesToModel(req.model) {
			continue
		}
		if f.Kind != FaultQuota && !f.roll(s.states[i], r) {
			continue
		}
		faultKinds[f.Kind].apply(p, f, s.states[i], in)
		p.note(f.Kind)
	}
	return r, p, now, seq
}

// settleQuota charges the quota buckets the tokens really used instead of
// the admission estimate.
func (s *Server) settleQuota(p *plan, estimate, used int) {
	if len(p.quotaBuckets) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range p.quotaBuckets {
		b.take(0, used-estimate)
	}
}

func (s *Server) bill(line InvoiceLine, c charge) {
	s.mu.Lock()
	defer s.mu.Unlock()
	line.At = time.Since(s.start)
	s.invoice = append(s.invoice, line)
	s.charges = append(s.charges, c)
}

// readBody reads at most maxBody bytes of the request body.
func readBody(r *http.Request) ([]byte, *apiError) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, badRequest("", "could not read the request body: "+err.Error())
	}
	if len(body) > maxBody {
		return nil, &apiError{status: 413, kind: errInvalidRequest, msg: fmt.Sprintf("request body is larger than %d bytes", maxBody)}
	}
	return body, nil
}
