package fakeprovider_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/brownout-dev/brownout/fakeprovider"
)

// BenchmarkServe is the rate a zero-latency fake answers a Go client over
// loopback TCP (client and server on the same two cores), so it is never
// the bottleneck of a gateway benchmark:
//
//	go test -run '^$' -bench Serve -benchtime 5s ./fakeprovider/
func BenchmarkServe(b *testing.B) {
	for _, v := range vendors {
		for _, stream := range []bool{false, true} {
			b.Run(name(v, "/stream=", stream), func(b *testing.B) {
				s, err := fakeprovider.NewUnstartedServer(vendorConfig(v))
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Start(); err != nil {
					b.Fatal(err)
				}
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
				proto := rawRequest(b, s, models[v][0], stream)
				body, _ := io.ReadAll(proto.Body)
				b.SetParallelism(8)
				b.ResetTimer()
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						req, _ := http.NewRequest(http.MethodPost, proto.URL.String(), bytes.NewReader(body))
						req.Header = proto.Header
						resp, err := client.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 {
							b.Errorf("status %d", resp.StatusCode)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
				b.StopTimer()
				client.CloseIdleConnections()
				s.Close()
			})
		}
	}
}
