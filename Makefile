# imipd: see README.md. Every target works on a fresh clone.
GO ?= go
FUZZTIME ?= 10m
ROUNDS ?= 20
PKGS = ./...

.PHONY: build test check fuzz bench clean run e2e crash

build:
	$(GO) build -o bin/ ./cmd/...

## test: static checks, then every test with the race detector (.ci/run runs this, then e2e).
test: check
	$(GO) test -race -count=1 $(PKGS)

## check: go vet and gofmt.
check:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## fuzz: run every fuzz target for FUZZTIME each (default 10m).
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./itip/imip/
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) ./itip/ics/
	$(GO) test -run='^$$' -fuzz='^FuzzValueRoundTrip$$' -fuzztime=$(FUZZTIME) ./itip/ics/
	$(GO) test -run='^$$' -fuzz='^FuzzText$$' -fuzztime=$(FUZZTIME) ./itip/ics/
	$(GO) test -run='^$$' -fuzz='^FuzzParseList$$' -fuzztime=$(FUZZTIME) ./address/
	$(GO) test -run='^$$' -fuzz='^FuzzApply$$' -fuzztime=$(FUZZTIME) ./itip/
	$(GO) test -run='^$$' -fuzz='^FuzzSenderRule$$' -fuzztime=$(FUZZTIME) ./itip/
	$(GO) test -run='^$$' -fuzz='^FuzzAttendeeEdit$$' -fuzztime=$(FUZZTIME) ./itip/
	$(GO) test -run='^$$' -fuzz='^FuzzParseInstance$$' -fuzztime=$(FUZZTIME) ./itip/
	$(GO) test -run='^$$' -fuzz='^FuzzAuthResults$$' -fuzztime=$(FUZZTIME) ./filter/
	$(GO) test -run='^$$' -fuzz='^FuzzMilterSession$$' -fuzztime=$(FUZZTIME) ./filter/milter/
	$(GO) test -run='^$$' -fuzz='^FuzzLMTPSession$$' -fuzztime=$(FUZZTIME) ./filter/lmtp/
	$(GO) test -run='^$$' -fuzz='^FuzzPushBody$$' -fuzztime=$(FUZZTIME) ./filter/push/
	$(GO) test -run='^$$' -fuzz='^FuzzHeaderFilter$$' -fuzztime=$(FUZZTIME) ./filter/
	$(GO) test -run='^$$' -fuzz='^FuzzQueryMatch$$' -fuzztime=$(FUZZTIME) ./caldav/
	$(GO) test -run='^$$' -fuzz='^FuzzEventCodec$$' -fuzztime=$(FUZZTIME) ./calstore/
	$(GO) test -run='^$$' -fuzz='^FuzzAddress$$' -fuzztime=$(FUZZTIME) ./address/

## bench: Go benchmarks, then the load comparison (bench/, build tag bench):
## imipd against a do-nothing milter, the LMTP proxy against its sink, RSS
## for a 50 MB message, and (as root, with Debian's postfix) real Postfix.
## Prints tables; targets are ratios within the run (BENCHMARKS.md).
## BENCHFLAGS: e.g. -quick, -postfix=no, -md FILE.
BENCHFLAGS ?=
bench:
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)
	$(GO) run -tags bench ./bench $(BENCHFLAGS)

## e2e: end-to-end tests with Debian's Postfix and Dovecot (as root; installs
## them with .ci/install-e2e when missing; private instances on loopback).
e2e:
	./.ci/install-e2e
	$(GO) test -tags e2e -count=1 -timeout 40m -v ./e2e/

## crash: the crash-safety test alone (issue 6): ROUNDS rounds (default 20) of
## 1,000 concurrent milter deliveries killed with kill -9 at a random moment,
## checked in the bbolt file after each (as root, like e2e; runs in the e2e
## package, so it needs the same packages).
crash:
	./.ci/install-e2e
	IMIPD_CRASH_ROUNDS=$(ROUNDS) $(GO) test -tags e2e -run '^TestCrashKill9$$' -count=1 -v -timeout 30m ./e2e/

## run: start imipd on its embedded defaults (Ctrl-C stops it).
run: build
	./bin/imipd

clean:
	rm -rf bin
