# Developer shortcuts. CI runs .ci/run.
.PHONY: test race fuzz bench lint quickstart

test:
	go test ./...

race:
	go test -race ./...

fuzz:
	FUZZTIME=60s bash -c 'for t in "./encode FuzzDecode" "./encode FuzzRoundTrip" "./wal FuzzReplay" "./wal FuzzReader" "./index FuzzDecodeKey" "./engine FuzzLogRecord" "./engine FuzzBlock" "./engine FuzzFeedCursor" "./compact FuzzDecodeRollups" "./server FuzzIngestJSON" "./server FuzzWriteBodies" "./remote FuzzAggState"; do set -- $$t; go test -run=^$$ -fuzz=^$$2$$ -fuzztime=$$FUZZTIME $$1 || exit 1; done'

bench:
	go test -run='^$$' -bench=. -benchmem -count=6 ./... | tee bench.txt

lint:
	go vet ./...
	gofmt -l .
	@command -v staticcheck >/dev/null && staticcheck ./... || echo "staticcheck not installed: go install honnef.co/go/tools/cmd/staticcheck@latest"

quickstart:
	go run ./examples/quickstart
