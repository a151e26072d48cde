# One image serves both roles: /intent-mapper runs the manager (the Deployment);
# /intent-mapper-agent, the agent alone, runs in the DaemonSet the manager creates, so
# a node never loads the manager's Kubernetes libraries.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY main.go manager.go ./
COPY api/ api/
COPY agent/ agent/
COPY controllers/ controllers/
COPY declared/ declared/
COPY gctune/ gctune/
COPY kafka/ kafka/
COPY resolved/ resolved/
COPY cmd/intent-mapper-agent/ cmd/intent-mapper-agent/
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /intent-mapper . && \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /intent-mapper-agent ./cmd/intent-mapper-agent

FROM scratch
COPY --from=build /intent-mapper /intent-mapper-agent /
# The manager runs as this non-root user. The agent's pod sets runAsUser 0 with only
# NET_RAW (packet sockets) and SYS_PTRACE (reading other processes' /proc/<pid>/ns/net).
USER 65532:65532
ENTRYPOINT ["/intent-mapper"]
CMD ["manager"]
