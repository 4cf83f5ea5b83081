/**
 * protobufjs reflection from field tables: how ferry declares CRIU's messages (RPC and image entries) from their
 * documented field numbers without generated code. Only the fields ferry reads or writes are declared.
 */
import * as protobuf from 'protobufjs';

export type FieldRule = 'optional' | 'required' | 'repeated';
export type FieldSpec = readonly [name: string, id: number, type: string, rule?: FieldRule];

export function protoMessage(name: string, fields: readonly FieldSpec[]): protobuf.Type {
  const type = new protobuf.Type(name);
  for (const [fieldName, id, fieldType, rule] of fields) {
    type.add(new protobuf.Field(fieldName, id, fieldType, rule === 'optional' ? undefined : rule));
  }
  return type;
}

/** A resolved root holding the given messages (their cross references resolved). */
export function protoRoot(messages: readonly protobuf.Type[]): protobuf.Root {
  const root = new protobuf.Root();
  for (const message of messages) root.add(message);
  root.resolveAll();
  return root;
}
