# The two commands a new user needs are `make demo` and `make test`.
GO ?= go

.PHONY: build demo serve test bench-inventory clean

build:
	$(GO) build -o bin/dynamo ./cmd/dynamo

# The main job, end to end, on a throwaway federation (two embedded SRM
# storage elements, a file:// site, SQLite) in a temporary directory: placement,
# verified transfers, Detox to watermarks, a project; a report; exit 0.
# `./bin/dynamo demo --keep` leaves it running to explore.
demo: build
	./bin/dynamo demo

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
