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
           ./server/api:FuzzCheckJSONText ./internal/release:FuzzParse
# Fuzz runs are bounded by executions, not time: Go 1.26 can fail a duration-bounded
# run with "context deadline exceeded" when the time runs out (go.dev/issue/75804).
FUZZTIME ?= 20000x

# Packages that ship for Windows and macOS too: `make test` builds and vets them there.
PORTABLE := ./agent/... ./server/... ./internal/... ./plugins/... ./certs/... ./client/... \
            ./cmd/patchbay ./cmd/patchbay-agent ./cmd/patchbay-server

.PHONY: all build web plugins proto run test unit crossvet fuzz-short lint bench clean

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

## run: start a relay (data in ./data) with one demo agent; Ctrl-C stops both
run: build
	@./deploy/demo.sh

## test: every test with the race detector (end-to-end included), then short fuzz runs
test: crossvet unit fuzz-short

## crossvet: the shipped packages build and vet clean for Windows and macOS
crossvet:
	GOOS=windows $(GO) vet $(PORTABLE)
	GOOS=darwin $(GO) vet $(PORTABLE)

unit: web
	$(GO) test -race -count=1 -timeout 30m ./...

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

## bench: load generator + benchmarks; rewrites docs/benchmarks.md
bench: build
	./bench/run.sh

clean:
	rm -rf bin $(VENDOR) $(CONSOLE)/node_modules
