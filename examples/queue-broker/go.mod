module heartwire.example/queue-broker

go 1.19
