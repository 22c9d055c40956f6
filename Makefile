# The two commands a new user needs are `make demo` and `make test`.
GO ?= go

.PHONY: build demo serve test bench-inventory clean

build:
	$(GO) build -o bin/dynamo ./cmd/dynamo

# The main job on the embedded default (SQLite under ./var), with a small
# sample inventory injected on first start. Stop with Ctrl-C.
demo: build
	./bin/dynamo serve --sample

serve: build
	./bin/dynamo serve

# Every test, against SQLite and a throwaway MariaDB (installed if missing).
test:
	scripts/test.sh

# The CMS-scale inventory benchmark against a throwaway MariaDB (about 10 min).
bench-inventory: build
	scripts/bench-inventory.sh

clean:
	rm -rf bin var
