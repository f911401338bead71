// Package pgtest gives tests a real Postgres: one container per test binary,
// started on first use through testcontainers-go, and a fresh database per
// test cloned from a migrated template (CREATE DATABASE ... TEMPLATE), so
// tests are isolated and cheap. Tests that stop and restart Postgres get a
// container of their own (Start).
//
// Environment:
//
//   - BROWNOUT_POSTGRES_IMAGE: the image (default postgres:16-alpine; `make
//     test` builds and sets brownout/postgres:15 where no registry answers).
//   - BROWNOUT_TEST_DATABASE_URL: use this server instead of a container. Its
//     user must be allowed to create databases. Start is not available then.
//
// Under `go test -short` tests that need Postgres skip; in a full run, a
// missing Docker daemon fails the test with a message saying how to fix it.
//
// A package that uses pgtest calls it from TestMain so the shared container
// is removed when the tests end:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for the SQL wait strategy
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/brownout-dev/brownout/internal/testmain"
)

// DefaultImage is the image used when BROWNOUT_POSTGRES_IMAGE is unset.
const DefaultImage = "postgres:16-alpine"

const (
	user     = "brownout"
	password = "brownout-test"
	dbName   = "brownout"
)

// Template is a database setup shared by many tests: Setup runs once per
// Server (once per test process on a shared server) on a database named
// after Name, which then serves as the template of every database New
// creates for it, and is dropped when the process's tests end.
type Template struct {
	Name  string                                             // [a-z0-9_]+, unique per setup
	Setup func(ctx context.Context, connString string) error // e.g. ledger.Migrate; nil means an empty database
}

// Server is a Postgres server for tests: a container, or the server named by
// BROWNOUT_TEST_DATABASE_URL.
type Server struct {
	admin     string // connection string to the maintenance database
	container *postgres.PostgresContainer
	// run names this Server's databases (its pid and a random suffix), so
	// test processes sharing one server (go test's packages at once, the
	// mutants, runs one after another) never take each other's names.
	run string

	mu        sync.Mutex
	templates map[string]error // template name -> setup result
}

var (
	shared     *Server
	sharedErr  error
	sharedOnce sync.Once
	dbSeq      atomic.Int64
)

// newServer is a Server on the maintenance database admin, in container if
// not nil.
func newServer(admin string, c *postgres.PostgresContainer) *Server {
	return &Server{admin: admin, container: c, run: fmt.Sprintf("%d_%x", os.Getpid(), rand.Uint32()), templates: map[string]error{}}
}

// Main runs the package's tests, shuffled (testmain.Run), and then removes
// the shared container, if one was started, or on the server
// BROWNOUT_TEST_DATABASE_URL names, the template databases this process
// made. Call it from TestMain.
func Main(m *testing.M) {
	code := testmain.Run(m)
	if shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if shared.container != nil {
			if err := shared.container.Terminate(ctx); err != nil {
				fmt.Fprintf(os.Stderr, "pgtest: terminate shared container: %v\n", err)
			}
		} else if err := shared.dropTemplates(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		}
		cancel()
	}
	os.Exit(code)
}

// Shared returns the test binary's shared server, starting it on first use.
// It skips the test under -short and fails it when no server can be had.
func Shared(t testing.TB) *Server {
	t.Helper()
	skipShort(t)
	sharedOnce.Do(func() {
		if u := os.Getenv("BROWNOUT_TEST_DATABASE_URL"); u != "" {
			shared = newServer(u, nil)
			return
		}
		shared, sharedErr = startContainer(context.Background(), "")
	})
	if sharedErr != nil {
		t.Fatalf("%v", sharedErr)
	}
	return shared
}

// Start starts a container for this test alone, removed when it ends. Use
// it to stop and restart Postgres (Stop, Restart) without disturbing other
// tests. Its host port stays the same across restarts, so clients reconnect.
func Start(t testing.TB) *Server {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return startOwn(t, "this test stops and restarts Postgres", strconv.Itoa(port))
}

// StartDurable is a container for this test alone (as Start) with Postgres
// as production runs it: fsync and synchronous_commit on, so every commit
// waits for the disk (the shared server runs with fsync off,
// testcontainers' default, for speed). For benchmarks that must see what a
// commit costs.
func StartDurable(t testing.TB) *Server {
	t.Helper()
	return startOwn(t, "this test needs a durable Postgres", "", "-c", "fsync=on", "-c", "synchronous_commit=on")
}

// startOwn starts a container removed when t ends; why says why it cannot
// run against BROWNOUT_TEST_DATABASE_URL.
func startOwn(t testing.TB, why, hostPort string, settings ...string) *Server {
	t.Helper()
	skipShort(t)
	if os.Getenv("BROWNOUT_TEST_DATABASE_URL") != "" {
		t.Skip("pgtest: " + why + ", which needs a container; " +
			"it does not run against BROWNOUT_TEST_DATABASE_URL (unset it and run `make test`)")
	}
	s, err := startContainer(context.Background(), hostPort, settings...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.container.Terminate(ctx); err != nil {
			t.Errorf("pgtest: terminate container: %v", err)
		}
	})
	return s
}

// New returns the connection string of a fresh database on the shared
// server, cloned from tmpl. The database is dropped when the test ends.
func New(t testing.TB, tmpl Template) string {
	t.Helper()
	return Shared(t).NewDatabase(t, tmpl)
}

// NewPool is New plus a pgx pool on the database, closed when the test ends.
func NewPool(t testing.TB, tmpl Template) *pgxpool.Pool {
	t.Helper()
	return Pool(t, New(t, tmpl))
}

// Pool opens a pgx pool on connString, closed when the test ends.
func Pool(t testing.TB, connString string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), connString)
	if err != nil {
		t.Fatalf("pgtest: pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Connections is how many connections the database at connString has
// besides the one this asks on, as the server counts them
// (pg_stat_activity).
func Connections(t testing.TB, connString string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
		t.Fatalf("pgtest: count connections: %v", err)
	}
	return n
}

// NewDatabase creates a fresh database cloned from tmpl and returns its
// connection string. It is dropped when the test ends.
func (s *Server) NewDatabase(t testing.TB, tmpl Template) string {
	t.Helper()
	ctx := context.Background()
	tmplDB, err := s.template(ctx, tmpl)
	if err != nil {
		t.Fatalf("pgtest: template %q: %v", tmpl.Name, err)
	}
	name := fmt.Sprintf("t_%s_%d", s.run, dbSeq.Add(1))
	if err := s.exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, tmplDB)); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		// WITH (FORCE) ends sessions a test left open (a pool not yet closed).
		if err := s.exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	return s.dsn(name)
}

// Stop stops the container (a fast shutdown), so clients see the database
// go away. It fails the test for a server it does not own.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	timeout := 10 * time.Second
	if err := s.container.Stop(context.Background(), &timeout); err != nil {
		t.Fatalf("pgtest: stop: %v", err)
	}
}

// Restart starts a stopped container again on the same host port and waits
// until it accepts queries.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.container.Start(context.Background()); err != nil {
		t.Fatalf("pgtest: restart: %v", err)
	}
}

// CutOff makes the database at connString, one of this server's, drop
// every connection and refuse new ones, as a restart or a failover does,
// until the returned func is called (or the test ends).
func (s *Server) CutOff(t testing.TB, connString string) (restore func()) {
	t.Helper()
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		t.Fatalf("pgtest: cut off: %v", err)
	}
	allow := func(yes bool) error {
		return s.exec(context.Background(), fmt.Sprintf("ALTER DATABASE %s ALLOW_CONNECTIONS %t", pgx.Identifier{cfg.Database}.Sanitize(), yes))
	}
	if err := allow(false); err != nil {
		t.Fatalf("pgtest: cut off: %v", err)
	}
	if err := s.exec(context.Background(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "+
		"'"+strings.ReplaceAll(cfg.Database, "'", "''")+"'"); err != nil {
		t.Fatalf("pgtest: cut off: %v", err)
	}
	var once sync.Once
	restore = func() {
		once.Do(func() {
			if err := allow(true); err != nil {
				t.Errorf("pgtest: restore: %v", err)
			}
		})
	}
	t.Cleanup(restore)
	return restore
}

// HoldCommits makes every commit that waits for durability wait until
// release is called (or the test ends): the server is told its commits
// must reach a synchronous standby that never connects. A transaction
// committed with synchronous_commit off, or one that wrote nothing, does
// not wait. While a commit waits, pg_stat_activity shows its backend with
// wait_event SyncRep; the transaction has committed but holds its locks
// until release. Only on a server of the test's own (Start, StartDurable).
func (s *Server) HoldCommits(t testing.TB) (release func()) {
	t.Helper()
	if s == shared || s.container == nil {
		t.Fatalf("pgtest: HoldCommits needs a server of the test's own (Start), not the shared one")
	}
	set := func(names string) error {
		if err := s.exec(context.Background(), "ALTER SYSTEM SET synchronous_standby_names = '"+names+"'"); err != nil {
			return err
		}
		return s.exec(context.Background(), "SELECT pg_reload_conf()")
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if err := set(""); err != nil {
				t.Errorf("pgtest: release commits: %v", err)
			}
		})
	}
	t.Cleanup(release) // before the test's databases are dropped, which would wait
	if err := set("brownout_never_connects"); err != nil {
		t.Fatalf("pgtest: hold commits: %v", err)
	}
	if err := s.awaitHeldCommits(); err != nil {
		t.Fatalf("pgtest: hold commits: %v", err)
	}
	return release
}

// awaitHeldCommits returns once a commit waits for the standby: the
// reload that asks for it reaches the server's processes in their own
// time. It commits a transactional WAL message until the commit waits
// (pg_stat_activity shows it in SyncRep), and then cancels that wait,
// which leaves the probe committed.
func (s *Server) awaitHeldCommits() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	probe, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		return err
	}
	defer probe.Close(context.Background())
	watch, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		return err
	}
	defer watch.Close(context.Background())
	var pid int
	if err := probe.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		return err
	}
	for {
		committed := make(chan error, 1)
		go func() {
			_, err := probe.Exec(ctx, "SELECT pg_logical_emit_message(true, 'pgtest', 'probe')")
			committed <- err
		}()
		held, finished, err := awaitSyncRep(ctx, watch, pid, committed)
		if err != nil {
			if !finished {
				cancel()
				<-committed // the probe's connection is closed only once it is idle
			}
			return err
		}
		if held {
			if _, err := watch.Exec(ctx, "SELECT pg_cancel_backend($1)", pid); err != nil {
				cancel()
				<-committed
				return err
			}
			return <-committed
		}
	}
}

// awaitSyncRep watches backend pid until it waits for the standby (held)
// or its probe returns (finished: committed has been received from).
func awaitSyncRep(ctx context.Context, watch *pgx.Conn, pid int, committed <-chan error) (held, finished bool, _ error) {
	for {
		select {
		case err := <-committed:
			if err != nil {
				return false, true, fmt.Errorf("probe commit: %w", err)
			}
			return false, true, nil // not held yet: the next probe
		case <-time.After(5 * time.Millisecond):
		}
		var event *string
		if err := watch.QueryRow(ctx, "SELECT wait_event FROM pg_stat_activity WHERE pid = $1", pid).Scan(&event); err != nil {
			return false, false, err
		}
		if event != nil && *event == "SyncRep" {
			return true, false, nil
		}
	}
}

// Admin returns the connection string of the server's maintenance
// database, for a test that watches the server (pg_stat_activity).
func (s *Server) Admin() string { return s.admin }

func (s *Server) template(ctx context.Context, tmpl Template) (string, error) {
	name := "tmpl_" + tmpl.Name + "_" + s.run
	s.mu.Lock()
	defer s.mu.Unlock()
	if err, ok := s.templates[name]; ok {
		return name, err
	}
	err := s.exec(ctx, "CREATE DATABASE "+name)
	if err == nil && tmpl.Setup != nil {
		err = tmpl.Setup(ctx, s.dsn(name))
	}
	s.templates[name] = err
	return name, err
}

// dropTemplates drops the template databases s made.
func (s *Server) dropTemplates(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for name := range s.templates {
		if err := s.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			errs = append(errs, fmt.Errorf("drop template database %s: %w", name, err))
		}
	}
	clear(s.templates)
	return errors.Join(errs...)
}

func (s *Server) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// dsn returns the connection string of database name on this server.
func (s *Server) dsn(name string) string {
	u, err := url.Parse(s.admin)
	if err != nil {
		// Keyword/value form: the last dbname wins.
		return s.admin + " dbname=" + name
	}
	u.Path = "/" + name
	return u.String()
}

// startContainer starts a Postgres container, on hostPort if not empty;
// settings ("-c", "k=v", ...) replace the module's default fsync=off.
func startContainer(ctx context.Context, hostPort string, settings ...string) (*Server, error) {
	image := os.Getenv("BROWNOUT_POSTGRES_IMAGE")
	if image == "" {
		image = DefaultImage
	}
	opts := []testcontainers.ContainerCustomizer{
		postgres.WithUsername(user), postgres.WithPassword(password), postgres.WithDatabase(dbName),
		// A query that succeeds over the mapped port is the readiness both the
		// official image (which logs "ready" twice) and the local one agree on.
		testcontainers.WithWaitStrategyAndDeadline(90*time.Second,
			wait.ForSQL("5432/tcp", "pgx", func(host string, port network.Port) string {
				return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", user, password,
					net.JoinHostPort(host, port.Port()), dbName)
			}).WithPollInterval(200*time.Millisecond)),
	}
	if len(settings) > 0 {
		opts = append(opts, testcontainers.WithCmd(append([]string{"postgres"}, settings...)...))
	}
	if hostPort != "" {
		opts = append(opts, testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = network.PortMap{
				network.MustParsePort("5432/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: hostPort}},
			}
		}))
	}
	c, err := postgres.Run(ctx, image, opts...)
	if err != nil {
		if c != nil {
			_ = c.Terminate(context.Background())
		}
		return nil, explain(image, err)
	}
	dsn, err := c.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		_ = c.Terminate(context.Background())
		return nil, fmt.Errorf("pgtest: connection string: %w", err)
	}
	return newServer(dsn, c), nil
}

func explain(image string, err error) error {
	msg := err.Error()
	hint := "run `make test`, which starts Docker and provides the image, or set BROWNOUT_TEST_DATABASE_URL to an existing server"
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("pgtest: postgres container (%s) did not become ready: %w; %s", image, err, hint)
	case containsAny(msg, "Cannot connect to the Docker daemon", "docker host", "rootless Docker not found", "cannot connect"):
		return fmt.Errorf("pgtest: no Docker daemon answered: %w; %s", err, hint)
	default:
		return fmt.Errorf("pgtest: start postgres container (%s): %w; %s", image, err, hint)
	}
}

func containsAny(s string, subs ...string) bool {
	s = strings.ToLower(s)
	for _, sub := range subs {
		if strings.Contains(s, strings.ToLower(sub)) {
			return true
		}
	}
	return false
}

func skipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("pgtest: needs Postgres; skipped under -short")
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
