package fakeprovider

import "time"

// errKind is a vendor-neutral error; each vendor renders it in its own
// envelope with its own type and status names.
type errKind int

const (
	errInvalidRequest errKind = iota // 400
	errAuthentication                // 401
	errPermission                    // 403
	errNotFound                      // 404
	errRateLimit                     // 429
	errServer                        // 500, 502, 504
	errUnavailable                   // 503
	errOverloaded                    // 529
)

// apiError is an error answer, before a vendor renders it.
type apiError struct {
	status     int
	kind       errKind
	msg        string
	param      string // the offending field (OpenAI's param)
	code       string // OpenAI's code
	retryAfter time.Duration
}

func badRequest(param, msg string) *apiError {
	return &apiError{status: 400, kind: errInvalidRequest, param: param, msg: msg}
}

func serverError(status int) *apiError {
	switch status {
	case 503:
		return &apiError{status: 503, kind: errUnavailable, msg: "The model is overloaded. Please try again later."}
	case 529:
		return &apiError{status: 529, kind: errOverloaded, msg: "Overloaded"}
	default:
		return &apiError{status: status, kind: errServer, msg: "Internal server error"}
	}
}
