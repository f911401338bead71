package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"

	"github.com/brownout-dev/brownout/fakeprovider"
)

// runFake starts one fake server per provider of the config, prints their
// URLs as the first line of stdout, and serves until ctx ends.
func runFake(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("brownout fake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "YAML file of fake providers (required)")
	addr := fs.String("addr", "127.0.0.1:0", "host:port to listen on; port 0 gives each provider a free port, "+
		"port N gives the providers N, N+1, ... in name order")
	tokenEnv := fs.String("control-token-env", "", "require the token in this environment variable of every request to the control API (/_fake/, header X-Fake-Control-Token); it answers loopback clients only either way")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *config == "" {
		return usagef("fake: --config is required")
	}
	token := ""
	if *tokenEnv != "" {
		if token = os.Getenv(*tokenEnv); token == "" {
			return usagef("fake: --control-token-env: the environment variable %s is empty", *tokenEnv)
		}
	}
	if fs.NArg() > 0 {
		return usagef("fake: unexpected arguments %q", fs.Args())
	}
	host, portText, err := net.SplitHostPort(*addr)
	if err != nil {
		return usagef("fake: --addr %q: %v", *addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return usagef("fake: --addr %q: bad port", *addr)
	}
	file, err := fakeprovider.LoadFile(*config)
	if err != nil {
		return usageError{err}
	}

	names := make([]string, 0, len(file.Providers))
	for name := range file.Providers {
		names = append(names, name)
	}
	slices.Sort(names)
	urls := map[string]string{}
	var servers []*fakeprovider.Server
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	for i, name := range names {
		cfg := file.Providers[name]
		cfg.ControlToken = token
		s, err := fakeprovider.NewUnstartedServer(cfg)
		if err != nil {
			return usageError{fmt.Errorf("fake: provider %s: %w", name, err)}
		}
		servers = append(servers, s)
		p := 0
		if port != 0 {
			p = port + i
		}
		if err := s.StartAt(net.JoinHostPort(host, strconv.Itoa(p))); err != nil {
			return fmt.Errorf("fake: provider %s: %w", name, err)
		}
		urls[name] = s.URL
	}
	line, err := json.Marshal(map[string]any{"providers": urls})
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
		return errors.Join(errors.New("fake: write stdout"), err)
	}
	<-ctx.Done()
	return nil
}
