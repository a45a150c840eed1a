-- Several nodes on one database: which nodes are alive, which node sends to which
-- endpoint, and cluster-wide leases for work that runs on one node at a time. Leases are
-- measured by the database's clock (now()), so nodes' clocks need not agree. No foreign
-- keys: an owner row may outlive its endpoint until its owner gives it up.

-- +goose Up
CREATE TABLE nodes (
    id          text COLLATE "C" PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    alive_until timestamptz NOT NULL
);

CREATE TABLE endpoint_owners (
    endpoint_id text COLLATE "C" PRIMARY KEY,
    node_id     text COLLATE "C" NOT NULL,
    lease_until timestamptz NOT NULL
);
CREATE INDEX endpoint_owners_node ON endpoint_owners (node_id);

CREATE TABLE cluster_leases (
    name        text COLLATE "C" PRIMARY KEY,
    holder      text COLLATE "C" NOT NULL,
    lease_until timestamptz NOT NULL
);

-- +goose Down
DROP TABLE cluster_leases;
DROP TABLE endpoint_owners;
DROP TABLE nodes;
