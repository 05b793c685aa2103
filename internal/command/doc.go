// Package command is the start-up plumbing every Shomei binary shares
// (shomei-ca, shomei-ocsp, shomeictl), so that each main only wires:
//
//   - the flags they all take: --config FILE (default from an environment
//     variable, else a development path) and -v for detail (Flags);
//   - logging: log/slog text to stderr, debug with -v (Flags.Logger);
//   - signals: a context that ends at SIGINT or SIGTERM (Main,
//     SignalContext), and exit status 1 with the error logged when run
//     fails;
//   - the servers' garbage-collector target (TuneGC, internal/gctuning) and
//     metrics registry (NewRegistry: no global registry);
//   - background work that lives as long as the server and is waited for
//     at a stop (Background); the listeners themselves are internal/server;
//   - the OCSP responder set-up both servers run: delegated responders
//     kept by an ocsp/responders.Keeper, and the ocsp.Responder answering
//     with them, from the configuration's ocsp section (NewKeeper,
//     StartResponder), and its pre-signer (NewPresigner).
package command
