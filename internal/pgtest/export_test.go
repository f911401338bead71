package pgtest

import "context"

// OtherProcess is a Server on s's maintenance database, as another test
// process sharing s's server has.
func OtherProcess(s *Server) *Server { return newServer(s.admin, nil) }

// Admin is the connection string of s's maintenance database.
func Admin(s *Server) string { return s.admin }

// DropTemplates drops the template databases s made, as Main does.
func DropTemplates(ctx context.Context, s *Server) error { return s.dropTemplates(ctx) }
