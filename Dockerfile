# One static binary serves both roles: `intent-mapper manager` (the Deployment) and
# `intent-mapper agent` (the DaemonSet the manager creates).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY main.go manager.go ./
COPY api/ api/
COPY agent/ agent/
COPY controllers/ controllers/
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /intent-mapper .

FROM scratch
COPY --from=build /intent-mapper /intent-mapper
# The manager runs as this non-root user. The agent's pod sets runAsUser 0 with only
# NET_RAW (packet sockets) and SYS_PTRACE (reading other processes' /proc/<pid>/ns/net).
USER 65532:65532
ENTRYPOINT ["/intent-mapper"]
CMD ["manager"]
