package llm

import "regexp"

// credentials match what vendors and clients put in messages that is, or
// is part of, a secret: API keys by their vendors' prefixes (OpenAI's sk-
// and sk-proj-, Anthropic's sk-ant-, Google's AIza), masked ones included
// ("sk-proj-ab12****wxyz"), bearer tokens, and key= query parameters.
var credentials = []*regexp.Regexp{
	regexp.MustCompile(`\b(sk|rk|pk)-[A-Za-z0-9_\-*]{6,}`),
	regexp.MustCompile(`\bAIza[0-9A-Za-z_\-*]{10,}`),
	regexp.MustCompile(`(?i)\bbearer\s+[A-Za-z0-9._~+/\-*]{8,}=*`),
	regexp.MustCompile(`(?i)\b((?:api[_-]?)?key=)[^&\s"']+`),
}

// Redact replaces every credential-like string in s with [redacted], so a
// vendor's message ("Incorrect API key provided: sk-proj-ab12****wxyz")
// can go to a log or the ledger.
func Redact(s string) string {
	for i, re := range credentials {
		if i == len(credentials)-1 {
			s = re.ReplaceAllString(s, "${1}[redacted]")
			continue
		}
		s = re.ReplaceAllString(s, "[redacted]")
	}
	return s
}
