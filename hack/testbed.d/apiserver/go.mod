module vpcep-testbed/apiserver

// Built in GOPATH mode from Debian packages (see ../../testbed); this file only enables
// "minimal module compatibility" for /vN import paths.
go 1.24
