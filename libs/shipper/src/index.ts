export { shipSnapshot, type ShipOptions, type ShipResult } from './ship-snapshot';
export { SnapshotStreams, type OpenStream } from './snapshot-streams';
