// Type tests for the golden output of tests/cases/kitchen_sink.
import { adminPanel, root } from "../cases/kitchen_sink/expected/ts/kitchen_sink/index";

declare const socket: root.RootSocket;

// Tagged unions narrow on the tag.
export function area(shape: root.Shape): number {
  if (shape.kind === "rect") {
    return shape.width * shape.height;
  }
  // @ts-expect-error narrowed to the circle, which has no width
  void shape.width;
  return Math.PI * shape.radius ** 2;
}
// @ts-expect-error a circle has no width
const badShape: root.Shape = { kind: "circle", width: 2 };
void badShape;
socket.emit("draw", { kind: "rect", width: 1, height: 2 }, (res) => {
  if (res.success) {
    const accepted: boolean = res.data.accepted;
    void accepted;
  }
});

// Recursion, nullable, maps, optional properties.
const tree: root.TreeNode = { label: "a", children: [{ label: "b", children: [], parent: null }] };
void tree;
const scalars: root.Scalars = {
  small: 1,
  big: 2,
  flag: true,
  color: "red",
  maybeText: null,
  scores: { a: 1 },
  "with-dash": "x",
  version: 2,
};
void scalars;
// @ts-expect-error color is an enumeration
const badScalars: root.Scalars = { small: 1, big: 2, flag: true, color: "pink" };
void badScalars;
// @ts-expect-error const 2
const badVersion: root.Scalars["version"] = 3;
void badVersion;

// An event whose name is a Rust keyword, and one without ack.
socket.emit("type", { text: "hi" });
// @ts-expect-error `type` has no ack
socket.emit("type", { text: "hi" }, () => {});

// Same event name in two namespaces gives two distinct payload types.
declare const admin: adminPanel.AdminPanelSocket;
admin.emit("ping", { nonce: null });
admin.emit("ping", { nonce: 3 });
// @ts-expect-error nonce is an integer or null
admin.emit("ping", { nonce: "3" });
const authRequired: true = adminPanel.AUTH_REQUIRED;
void authRequired;
