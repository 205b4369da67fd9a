# Patchbay. The two commands: `make run` and `make test`.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
CMDS    := patchbay-server patchbay-agent patchbay patchbay-loadgen
PLUGINS := cacheclear printerreset patchinstall script sysinfo
# Fuzz targets run briefly by `make test` (package:target).
FUZZ    := ./internal/wire:FuzzDecode ./internal/wire:FuzzDecodeSoftware ./internal/selector:FuzzParse ./certs:FuzzSignAgentCSR ./certs:FuzzParseFingerprint \
           ./plugins/signature:FuzzParseAllowedSigners ./plugins/signature:FuzzVerify ./plugins/scriptmeta:FuzzParse \
           ./internal/asciicast:FuzzParse ./agent/consent:FuzzHelperMessage ./internal/receipt:FuzzDecode ./agent/desktop:FuzzCopyViewOnly \
            ./server/api:FuzzCheckJSONText ./internal/release:FuzzParse ./internal/wire:FuzzDecodeChecks ./internal/lpstat:FuzzParse \
            ./server:FuzzPendingUpdates
# Fuzz runs are bounded by executions, not time: Go 1.26 can fail a duration-bounded
# run with "context deadline exceeded" when the time runs out (go.dev/issue/75804).
FUZZTIME ?= 20000x

# Packages that ship for Windows and macOS too: `make test` builds and vets them there.
PORTABLE := ./agent/... ./server/... ./internal/... ./plugins/... ./certs/... ./client/... \
            ./cmd/patchbay ./cmd/patchbay-agent ./cmd/patchbay-server

.PHONY: all build web plugins proto run test unit crossvet fuzz-short lint bench clean release

all: build

## build: compile every command into bin/ and the built-in plugins into bin/plugins/
build: web plugins
	@mkdir -p bin
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/ $(addprefix ./cmd/,$(CMDS))

## web: the web console's built files, embedded in patchbay-server (git-ignored):
## xterm.js, noVNC and asciinema-player from npm (pinned in server/console/package-lock.json), Go's
## wasm_exec.js and the browser's SSH client (cmd/patchbay-webssh) in WebAssembly
CONSOLE := server/console
VENDOR  := $(CONSOLE)/web/vendor
web:
	@mkdir -p $(VENDOR)
	@if [ ! -f $(CONSOLE)/node_modules/.package-lock.json ] || \
		[ $(CONSOLE)/package-lock.json -nt $(CONSOLE)/node_modules/.package-lock.json ]; then \
		echo "npm ci ($(CONSOLE))"; cd $(CONSOLE) && npm ci --ignore-scripts --no-audit --no-fund; fi
	cp $(CONSOLE)/node_modules/@xterm/xterm/lib/xterm.mjs $(CONSOLE)/node_modules/@xterm/xterm/css/xterm.css \
		$(CONSOLE)/node_modules/@xterm/addon-fit/lib/addon-fit.mjs "$$($(GO) env GOROOT)/lib/wasm/wasm_exec.js" $(VENDOR)/
	rm -rf $(VENDOR)/novnc && mkdir -p $(VENDOR)/novnc && \
		cp -R $(CONSOLE)/node_modules/@novnc/novnc/core $(CONSOLE)/node_modules/@novnc/novnc/vendor $(VENDOR)/novnc/
	cp $(CONSOLE)/node_modules/asciinema-player/dist/bundle/asciinema-player.min.js \
		$(CONSOLE)/node_modules/asciinema-player/dist/bundle/asciinema-player.css $(VENDOR)/
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags "-s $(LDFLAGS)" -o $(VENDOR)/webssh.wasm ./cmd/patchbay-webssh

plugins:
	@mkdir -p bin/plugins
	$(GO) build -trimpath -o bin/plugins/ $(addprefix ./plugins/,$(PLUGINS))

## proto: regenerate the plugin gRPC code (needs protoc, protoc-gen-go, protoc-gen-go-grpc)
proto:
	cd plugins/sdk/pluginpb && protoc --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative plugin.proto

## run: start a relay (data in ./data) with one demo agent; Ctrl-C stops both. It builds only what
## the demo uses (the relay with its web console, the agent, the CLI, the plugins), quietly
DEMO_CMDS := patchbay-server patchbay-agent patchbay
run:
	@for t in npm:npm ssh-keygen:openssh-client; do command -v $${t%%:*} >/dev/null 2>&1 || \
		{ echo "make run needs $${t%%:*}: apt-get install -y $${t##*:} (or run .ci/run, which installs it)" >&2; exit 1; }; done
	@echo "Building the relay, the web console, the agent, the CLI and the plugins (the first build takes a few minutes)..."
	@$(MAKE) -s --no-print-directory web plugins
	@mkdir -p bin
	@$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/ $(addprefix ./cmd/,$(DEMO_CMDS))
	@echo "Built into bin/. Starting the demo relay and agent..."
	@./deploy/demo.sh

## test: every test with the race detector (end-to-end included), then short fuzz runs
test: crossvet unit fuzz-short

## crossvet: the shipped packages build and vet clean for Windows and macOS; the agent's, the
## CLI's and the plugins' tests compile there and their binaries build (compile only, nothing runs)
CROSSTEST := ./agent/... ./cmd/patchbay ./cmd/patchbay-agent ./plugins/...
CROSSBIN  := ./cmd/patchbay-agent ./cmd/patchbay $(addprefix ./plugins/,$(PLUGINS))
crossvet:
	GOOS=windows $(GO) vet $(PORTABLE)
	GOOS=darwin $(GO) vet $(PORTABLE)
	@set -e; d=$$(mktemp -d); trap 'rm -rf "$$d"' EXIT; for os in windows darwin; do \
		echo "GOOS=$$os go test -c (compile only) and go build"; \
		mkdir -p "$$d/$$os/test" "$$d/$$os/bin"; \
		GOOS=$$os $(GO) test -c -o "$$d/$$os/test/" $(CROSSTEST); \
		GOOS=$$os $(GO) build -o "$$d/$$os/bin/" $(CROSSBIN); \
	done

## unit: every package's tests with -race; -timeout bounds each package's test binary, and e2e is the
## longest (about 25 minutes: its independent long tests run two at a time with t.Parallel)
unit: web
	$(GO) test -race -count=1 -timeout 50m ./...

fuzz-short:
	@set -e; for t in $(FUZZ); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name ($$pkg, $(FUZZTIME))"; \
		if ! out=$$($(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg 2>&1); then \
			echo "$$out" | tail -60; \
			for f in $$(git ls-files --others --exclude-standard "$$pkg/testdata/fuzz/$$name"); do \
				echo "--- failing input $$f:"; cat "$$f"; echo; \
			done; \
			exit 1; \
		fi; \
	done; echo "fuzz: all targets passed"

## lint: gofmt, go vet, staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	$$($(GO) env GOPATH)/bin/staticcheck ./...

## release: dist/VERSION/ with the agent, CLI and plugins for linux, windows and darwin
## (amd64, arm64), the relay for linux, .deb and .rpm packages, the macOS LaunchDaemon
## plist and SHA256SUMS; RELEASE_KEY=path/to/ssh/key signs SHA256SUMS (namespace
## patchbay-release). RELEASE_PLATFORMS=linux/amd64,... builds fewer. README: Releases and packages.
RELEASE_KEY       ?=
RELEASE_PLATFORMS ?=
RELEASE_DIR       := dist/$(VERSION)
release: web
	rm -rf $(RELEASE_DIR)
	$(GO) run ./cmd/patchbay-release --version $(VERSION) --out $(RELEASE_DIR) --go $(GO) \
		$(if $(RELEASE_KEY),--key $(RELEASE_KEY)) $(if $(RELEASE_PLATFORMS),--platforms $(RELEASE_PLATFORMS))

## bench: load generator + benchmarks; rewrites docs/benchmarks.md
bench: build
	./bench/run.sh

clean:
	rm -rf bin $(VENDOR) $(CONSOLE)/node_modules
