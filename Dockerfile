# Build: docker build -t umeeting_exporter .
# Run:   docker run -p 9861:9861 -v umeeting-data:/var/lib/umeeting_exporter \
#          -v $PWD/config.yml:/etc/umeeting_exporter/config.yml:ro umeeting_exporter
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=unknown
RUN CGO_ENABLED=0 go build -trimpath -ldflags "\
      -X github.com/prometheus/common/version.Version=${VERSION} \
      -X github.com/prometheus/common/version.Revision=${REVISION} \
      -X github.com/prometheus/common/version.Branch=main \
      -X github.com/prometheus/common/version.BuildUser=docker" \
    -o /out/umeeting_exporter . \
 && mkdir -p /out/data && chown 65534:65534 /out/data

# A small base with CA certificates (for the vendor's HTTPS API) and a
# shell for debugging, as the Prometheus project's images use.
FROM quay.io/prometheus/busybox:latest
LABEL org.opencontainers.image.title="umeeting_exporter" \
      org.opencontainers.image.description="Prometheus exporter for UMeeting meeting usage"
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/umeeting_exporter /bin/umeeting_exporter
COPY config.yml /etc/umeeting_exporter/config.yml
COPY --from=build --chown=nobody:nobody /out/data /var/lib/umeeting_exporter
USER nobody
# Relative --storage.path values (the default "data", e.g. with --demo) land in the volume.
WORKDIR /var/lib/umeeting_exporter
EXPOSE 9861
VOLUME ["/var/lib/umeeting_exporter"]
ENTRYPOINT ["/bin/umeeting_exporter"]
CMD ["--config.file=/etc/umeeting_exporter/config.yml", "--storage.path=/var/lib/umeeting_exporter"]
