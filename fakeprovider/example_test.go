package fakeprovider_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/brownout-dev/brownout/fakeprovider"
)

func ExampleNewServer() {
	s := fakeprovider.NewServer(fakeprovider.Config{
		Vendor: fakeprovider.OpenAI,
		Seed:   1,
		Models: map[string]fakeprovider.Model{
			"o4-mini": {Answers: []fakeprovider.Answer{{Text: "Paris"}}, ReasoningTokens: fakeprovider.Fixed(24)},
		},
	})
	defer s.Close()

	req, _ := http.NewRequest("POST", s.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"o4-mini","messages":[{"role":"user","content":"Capital of France?"}]}`))
	req.Header.Set("Authorization", "Bearer any-key")
	resp, err := s.Client().Do(req)
	if err != nil {
		panic(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	line := s.Invoice().Lines[0]
	fmt.Println(resp.StatusCode, line.Model, line.InputTokens, line.OutputTokens, line.ReasoningTokens)
	// Output: 200 o4-mini 5 2 24
}
