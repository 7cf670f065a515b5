/**
 * The admin API's JSON as the dashboard reads it: the encoded side of the
 * fleet model's classes (dates as ISO strings). Type-only imports: nothing
 * of the model's runtime (Effect, Schema) reaches the browser bundle.
 */
import type * as Model from "../fleet/Model.js"

/** The JSON of a model class. */
type Json<S extends { readonly Encoded: unknown }> = S["Encoded"]

export type Status = Model.Status
export type Role = Model.Role
export type Arch = Model.Arch
export type Application = Json<typeof Model.Application>
export type Package = Json<typeof Model.Package>
export type Channel = Json<typeof Model.Channel>
export type Group = Json<typeof Model.Group>
export type Policy = Json<typeof Model.Policy>
export type MaintenanceWindow = Json<typeof Model.MaintenanceWindow>
export type Activity = Json<typeof Model.Activity>
export type StatusChange = Json<typeof Model.StatusChange>
export type InstanceEvent = Json<typeof Model.InstanceEvent>
export interface InstanceItem {
  readonly machineId: string
  readonly alias: string
  readonly ip: string
  readonly version: string
  readonly status: Status
  readonly group?: string
  readonly track: string
  readonly arch: string
  readonly hold?: string
  readonly errorCode?: number
  readonly lastCheck: string
  readonly lastGrant?: string
  readonly grantedVersion?: string
}
export interface InstanceDetail extends InstanceItem {
  readonly oem: string
  readonly oemVersion: string
  readonly alephVersion: string
  readonly firstSeen: string
  readonly history: ReadonlyArray<StatusChange>
  readonly events: ReadonlyArray<InstanceEvent>
}
export interface InstancePage {
  readonly items: ReadonlyArray<InstanceItem>
  readonly total: number
}
export type GroupStatus = Json<typeof Model.GroupStatus>
export type Timeline = Json<typeof Model.Timeline>
export type TimelineWindow = Model.TimelineWindow
export type Session = { readonly role: Role; readonly name: string }
