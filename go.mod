module github.com/raftkit/raftkit

go 1.26.8
