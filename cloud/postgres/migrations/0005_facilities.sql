-- Facilities as the fleet configures them: where a garage is, whether its availability
-- is published, and its layout (levels, zones, spots). The facilities row of 0001 is
-- extended rather than replaced: the ingest creates it when a garage first sends
-- events, and the configuration is added to it, before or after.

ALTER TABLE facilities
    ADD COLUMN address        text             NOT NULL DEFAULT '',
    ADD COLUMN city           text             NOT NULL DEFAULT '',
    -- ISO 3166-1 alpha-2, upper case; '' when not set
    ADD COLUMN country        text             NOT NULL DEFAULT '',
    -- WGS 84; both NULL when not set
    ADD COLUMN lat            double precision CHECK (lat BETWEEN -90 AND 90),
    ADD COLUMN lon            double precision CHECK (lon BETWEEN -180 AND 180),
    -- an IANA time zone name
    ADD COLUMN timezone       text             NOT NULL DEFAULT 'UTC',
    -- ISO 4217
    ADD COLUMN currency       text             NOT NULL DEFAULT 'EUR',
    -- listed to anonymous callers and in the open-data exports
    ADD COLUMN public         boolean          NOT NULL DEFAULT false,
    -- bumped by every change to the facility's configuration, in the same transaction;
    -- the version of the "layout" downlink document
    ADD COLUMN layout_version bigint           NOT NULL DEFAULT 0 CHECK (layout_version >= 0),
    -- the highest layout version the hub has accepted; behind layout_version when a
    -- publish failed and must be retried
    ADD COLUMN layout_published bigint         NOT NULL DEFAULT 0 CHECK (layout_published >= 0),
    ADD COLUMN updated_at     timestamptz      NOT NULL DEFAULT now(),
    ADD CONSTRAINT facilities_location CHECK ((lat IS NULL) = (lon IS NULL));

CREATE INDEX facilities_public ON facilities (id) WHERE public;
CREATE INDEX facilities_layout_unpublished ON facilities (id) WHERE layout_published < layout_version;

CREATE TABLE levels (
    facility_id text    NOT NULL REFERENCES facilities (id) ON DELETE CASCADE,
    id          text    NOT NULL,
    name        text    NOT NULL DEFAULT '',
    -- the floor: 0 the ground, negative below it
    ordinal     integer NOT NULL DEFAULT 0,
    PRIMARY KEY (facility_id, id)
);

-- Zones as configured. A zone the garage reports counts for (zone_occupancy) without
-- being configured here still shows in availability, with the garage's capacity.
CREATE TABLE zones (
    facility_id text    NOT NULL REFERENCES facilities (id) ON DELETE CASCADE,
    id          text    NOT NULL,
    level_id    text,
    name        text    NOT NULL DEFAULT '',
    -- general, permit, reservation, ev, disabled, staff, other
    kind        text    NOT NULL DEFAULT 'general',
    capacity    integer NOT NULL CHECK (capacity >= 0),
    -- spaces kept for bookings and permits: not offered to walk-ins
    held_back   integer NOT NULL DEFAULT 0 CHECK (held_back >= 0 AND held_back <= capacity),
    PRIMARY KEY (facility_id, id),
    FOREIGN KEY (facility_id, level_id) REFERENCES levels (facility_id, id)
);

CREATE TABLE spots (
    facility_id text NOT NULL,
    id          text NOT NULL,
    zone_id     text NOT NULL,
    label       text NOT NULL DEFAULT '',
    -- standard, ev, disabled, family, motorcycle, compact, oversize
    kind        text NOT NULL DEFAULT 'standard',
    PRIMARY KEY (facility_id, id),
    FOREIGN KEY (facility_id, zone_id) REFERENCES zones (facility_id, id)
);
CREATE INDEX spots_zone ON spots (facility_id, zone_id);

CREATE TABLE spot_features (
    facility_id text NOT NULL,
    spot_id     text NOT NULL,
    -- charger, covered, wide, height_limited, ...
    feature     text NOT NULL,
    PRIMARY KEY (facility_id, spot_id, feature),
    FOREIGN KEY (facility_id, spot_id) REFERENCES spots (facility_id, id) ON DELETE CASCADE
);
