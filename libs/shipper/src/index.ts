export { shipSnapshot, type ShipOptions, type ShipResult } from './ship-snapshot';
