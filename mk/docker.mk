# Container images and the docker-compose cluster. Included from the top-level Makefile; every
# path is relative to the repository root. Nothing is pulled: the images are built here.
#
#   make image-base    Debian 12 + MariaDB base image, via debootstrap (once; ~1.5 min)
#   make image-consul  Consul 1.16.3 server image, FROM scratch
#   make image         bin/mysqlpilot (static) + mysqlpilot/mysql:latest
#   make image-haproxy mysqlpilot/haproxy:latest, the front door (Debian's haproxy on the base)
#   make images        all four
#   make up            images, then consul + SCALE (3) mysql + haproxy; waits for a healthy cluster
#   make down          stop the cluster and DELETE its volumes (data, snapshots, Consul state)
#   make system-tests  images, then the Go system tests (test/system, build tag `system`): each
#                      test runs its own compose project (unique name, free port) and removes it.
#                      RUN=Regexp picks tests, e.g. make system-tests RUN=TestDockerStop
#   make smoke-test    images, then docker/smoke-test.sh: a quick throwaway 3-node cluster
#
# Images are rebuilt only when their inputs changed (docker/build-image.sh); FORCE=1 rebuilds.
# Each build's context holds only the files the Dockerfile copies, not the repository.

# Keep the including Makefile's default goal.
_docker_mk_default_goal := $(.DEFAULT_GOAL)

DOCKER_BASE_IMAGE   ?= mysqlpilot/base-mariadb:bookworm
DOCKER_CONSUL_IMAGE ?= mysqlpilot/consul:1.16.3
DOCKER_HAPROXY_IMAGE ?= mysqlpilot/haproxy:latest
# The including Makefile's GO and LDFLAGS (version stamp) when it has them.
MYSQLPILOT_GO ?= $(or $(GO),go)
MYSQLPILOT_GO_LDFLAGS ?= $(or $(LDFLAGS),-s -w)
# Read by docker/up.sh and docker-compose.yml.
export MYSQLPILOT_IMAGE ?= mysqlpilot/mysql:latest
export CONSUL_UI_PORT ?= 8500
export SCALE ?= 3
export WAIT_TIMEOUT ?= 180

.PHONY: image-base image-consul image image-haproxy images up up-preflight down system-tests smoke-test bin/mysqlpilot

image-base:
	BASE_IMAGE=$(DOCKER_BASE_IMAGE) docker/make-base-image.sh $(if $(filter 1,$(FORCE)),--force)

# The consul binary comes from test/tools/install-consul.sh (cached after its first build).
image-consul:
	test/tools/install-consul.sh
	docker/build-image.sh $(DOCKER_CONSUL_IMAGE) docker/consul.Dockerfile \
	  consul=$${MYSQLPILOT_TOOLS:-$$HOME/.cache/mysqlpilot/bin}/consul

# Static: the base image's libc does not matter. go's build cache makes an unchanged rebuild
# fast, and -trimpath keeps the binary (so the image's input hash) reproducible.
bin/mysqlpilot:
	CGO_ENABLED=0 $(MYSQLPILOT_GO) build -trimpath -ldflags "$(MYSQLPILOT_GO_LDFLAGS)" -o bin/mysqlpilot ./cmd/mysqlpilot

# The image carries the consul binary too, for the optional local agent (consul.agent.join;
# docker-compose.consul-ha.yml).
image: bin/mysqlpilot image-base
	test/tools/install-consul.sh
	BASE_IMAGE=$(DOCKER_BASE_IMAGE) docker/build-image.sh $(MYSQLPILOT_IMAGE) docker/Dockerfile \
	  bin/mysqlpilot etc/mysqlpilot.json consul=$${MYSQLPILOT_TOOLS:-$$HOME/.cache/mysqlpilot/bin}/consul

# HAProxy from Debian's package, installed at build time from the mirror the base image names.
image-haproxy: image-base
	BASE_IMAGE=$(DOCKER_BASE_IMAGE) docker/build-image.sh $(DOCKER_HAPROXY_IMAGE) docker/haproxy.Dockerfile \
	  etc/haproxy.cfg docker/haproxy-entrypoint.sh

images: image-base image-consul image image-haproxy

# Prerequisites run left to right: docker/port checks fail fast, before any build.
up: up-preflight images
	docker/up.sh

up-preflight:
	docker/up.sh --preflight

down:
	docker-compose down -v --remove-orphans

# Run by the Makefile's test-system. Leaves a developer's own `make up` cluster alone: every
# test runs in its own compose project and removes it (containers, network, volumes).
SYSTEM_TEST_TIMEOUT ?= 40m
system-tests: images
	$(MYSQLPILOT_GO) test -tags system -count=1 -timeout $(SYSTEM_TEST_TIMEOUT) -v \
	  $(if $(RUN),-run '$(RUN)') ./test/system/

smoke-test: images
	docker/smoke-test.sh

.DEFAULT_GOAL := $(_docker_mk_default_goal)
